"""Snakemake script: concatenate guide-point tables (per source, or per shard) into one."""
from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.core.aggregate import concat_to
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
concat_to(snakemake.input, snakemake.output[0], GUIDE_POINTS)  # noqa: F821
