"""Snakemake script: concatenate the per-shard LV model tables into cohort tables."""

import logging

import pandas as pd

from cmr_atlas.stats.covariates import index_by_bsa
from cmr_atlas.cine.lvmodel.outputs import TABLES
from cmr_atlas.core.tables import concat_tables, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
for name, schema in TABLES.items():
    df = concat_tables(list(snakemake.input[name]), schema)  # noqa: F821
    if name == "measures":  # BSA indexing from the joined covariates (null where BSA is unknown)
        df = index_by_bsa(df, pd.read_parquet(snakemake.input.covariates))  # noqa: F821
    write_table(df, snakemake.output[name], schema)  # noqa: F821
    logging.info("%s: %d rows", name, len(df))
