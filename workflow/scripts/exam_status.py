# The cohort's exam_status table: every shard's per-stage status files, concatenated.
from cmr_atlas.core.aggregate import concat_to
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.core.runner import EXAM_STATUS

log_to_file(snakemake.log[0])
concat_to(snakemake.input, snakemake.output[0], EXAM_STATUS)
