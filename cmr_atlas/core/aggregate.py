"""Cohort tables from per-shard tables: the aggregate step of every sharded stage."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from cmr_atlas.core.tables import TableSchema, concat_tables, write_table

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def concat_to(paths: Sequence[PathLike], out_path: PathLike, schema: TableSchema) -> pd.DataFrame:
    """Concatenate the tables at ``paths`` into ``out_path`` (checked against ``schema``)."""
    df = concat_tables(list(paths), schema)
    write_table(df, out_path, schema)
    log.info("%s: %d rows", schema.name, len(df))
    return df


def aggregate_tables(shard_paths: Mapping[str, Sequence[PathLike]], out_paths: Mapping[str, PathLike],
                     schemas: Iterable[TableSchema]) -> None:
    """For each schema named in ``out_paths``: ``out_paths[name]`` from ``shard_paths[name]``.

    Both mappings are keyed by table name (a Snakemake rule's named input and output do).
    """
    names = set(out_paths.keys())
    for schema in schemas:
        if schema.name in names:
            concat_to(shard_paths[schema.name], out_paths[schema.name], schema)
