"""Snakemake script of rule tiscout: the cohort's ti_selection and lge_ti_audit from the shards'."""
from cmr_atlas.core.aggregate import aggregate_tables
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.tiscout.stage import LGE_TI_AUDIT, TI_SELECTION

log_to_file(snakemake.log[0])  # noqa: F821
aggregate_tables(snakemake.input, snakemake.output, (TI_SELECTION, LGE_TI_AUDIT))  # noqa: F821
