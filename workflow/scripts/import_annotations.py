"""Snakemake script of rule import_annotations: cmr_atlas.formats.importers.import_to_folder."""
from pathlib import Path

from cmr_atlas.core.logs import log_to_file
from cmr_atlas.formats.importers import import_to_folder

log_to_file(snakemake.log[0])  # noqa: F821
import_to_folder(
    snakemake.params.fmt, list(snakemake.input), snakemake.params.cohort,  # noqa: F821
    Path(snakemake.output.contours).parent, snakemake.params.observer, snakemake.params.labels,  # noqa: F821
)
