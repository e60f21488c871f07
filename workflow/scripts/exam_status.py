# The cohort's exam_status table: every shard's per-stage status files, concatenated.
from cmr_atlas.core.logs import log_to_file

from cmr_atlas.core.runner import concat_status

log_to_file(snakemake.log[0])
concat_status(list(snakemake.input), snakemake.output[0])
