"""Snakemake script of rule export_nifti_shard: cmr_atlas.formats.export.export_shard_nifti."""
from pathlib import Path

from cmr_atlas.core.logs import log_to_file
from cmr_atlas.core.shards import shard_exam_ids
from cmr_atlas.formats.export import export_shard_nifti

log_to_file(snakemake.log[0])  # noqa: F821
export_shard_nifti(shard_exam_ids(snakemake.input.exams), snakemake.params.cache, snakemake.input.masks,  # noqa: F821
                   Path(snakemake.output[0]).parent, snakemake.output[0])  # noqa: F821
