"""Snakemake script of rule fit: the cohort LV model tables, measures indexed by BSA."""
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.stats.fit_aggregate import aggregate_fit_tables

log_to_file(snakemake.log[0])  # noqa: F821
aggregate_fit_tables(snakemake.input, snakemake.input.covariates, snakemake.output)  # noqa: F821
