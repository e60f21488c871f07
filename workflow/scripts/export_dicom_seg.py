"""Snakemake script of rule export_dicom_seg_shard: cmr_atlas.formats.export.export_shard_dicom_seg."""
from pathlib import Path

from cmr_atlas.core.logs import log_to_file
from cmr_atlas.formats.export import export_shard_dicom_seg

log_to_file(snakemake.log[0])  # noqa: F821
i = snakemake.input  # noqa: F821
export_shard_dicom_seg(snakemake.params.cohort, i.folders, i.exam_keys, snakemake.config["exam_id_key"],  # noqa: F821
                       i.phases, i.masks, Path(snakemake.output[0]).parent, snakemake.output[0])  # noqa: F821
