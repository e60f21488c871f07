"""Snakemake script of rule ingest: the cohort ingest tables from the per-shard ones."""
from cmr_atlas.core.aggregate import aggregate_tables
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.dicom.index import INGEST_TABLES, LINKAGE

log_to_file(snakemake.log[0])  # noqa: F821
aggregate_tables(snakemake.input, snakemake.output, (*INGEST_TABLES, LINKAGE))  # noqa: F821
