"""Snakemake script of rule export_cap_shard: cmr_atlas.formats.export.export_shard_cap."""
from pathlib import Path

from cmr_atlas.core.logs import log_to_file
from cmr_atlas.formats.export import export_shard_cap

log_to_file(snakemake.log[0])  # noqa: F821
export_shard_cap(snakemake.input.guide_points, snakemake.input.slices,  # noqa: F821
                 Path(snakemake.output[0]).parent, snakemake.output[0])  # noqa: F821
