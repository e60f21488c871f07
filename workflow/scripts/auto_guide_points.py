# Automated guide points (source auto) of one shard from its inference outputs.
from cmr_atlas.core.logs import log_to_file

from cmr_atlas.cine import autoguide
from cmr_atlas.core.shards import shard_exam_ids

log_to_file(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
autoguide.run_shard(shard_exam_ids(inp.exams), snakemake.params.cache, landmarks_path=inp.landmarks,
                    qc_path=inp.qc, phases_path=inp.phases, masks_dir=inp.masks,
                    out_path=out.guide_points, status_path=out.status)
