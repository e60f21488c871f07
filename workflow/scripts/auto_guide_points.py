import logging
from pathlib import Path

from cmr_atlas.cine import autoguide
from cmr_atlas.cli.infer import shard_exam_ids

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
autoguide.run_shard(shard_exam_ids(snakemake.input.exams), snakemake.params.cache,
                    Path(snakemake.input.phases).parent, snakemake.output[0])
