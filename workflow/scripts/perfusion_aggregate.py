# Cohort perfusion tables from the shards': cmr_atlas.core.aggregate.
from cmr_atlas.core.aggregate import aggregate_tables
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.perfusion.tables import PERFUSION_TABLES

log_to_file(snakemake.log[0])  # noqa: F821
aggregate_tables(snakemake.input, snakemake.output, PERFUSION_TABLES)  # noqa: F821
