"""Concatenate parquet tables of the guide-point schema (per source, or per shard) into one."""
import logging

from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.core.tables import concat_tables, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
write_table(concat_tables(list(snakemake.input), GUIDE_POINTS), snakemake.output[0], GUIDE_POINTS)
