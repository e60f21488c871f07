# Automated guide points (source auto) of one shard from its inference outputs.
import logging

from cmr_atlas.cine import autoguide
from cmr_atlas.core.shards import shard_exam_ids

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
inp, out = snakemake.input, snakemake.output
autoguide.run_shard(shard_exam_ids(inp.exams), snakemake.params.cache, landmarks_path=inp.landmarks,
                    qc_path=inp.qc, phases_path=inp.phases, masks_dir=inp.masks,
                    out_path=out.guide_points, status_path=out.status)
