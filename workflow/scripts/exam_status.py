# The cohort's exam_status table: every shard's per-stage status files, concatenated.
import logging

from cmr_atlas.core.runner import concat_status

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
concat_status(list(snakemake.input), snakemake.output[0])
