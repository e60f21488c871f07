"""The cohort LV model tables: the per-shard fit tables concatenated, and the measures indexed by
body-surface area, here and only here (the report and the stats stage read the indexed table).

Indexing needs the joined covariates (BSA), which only exist at cohort level: the per-shard
measures leave edvi, esvi and lvmi null.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from cmr_atlas.cine.lvmodel.outputs import CYCLE_TABLES, MEASURES, TABLES
from cmr_atlas.core.aggregate import aggregate_tables
from cmr_atlas.core.tables import concat_tables, write_table
from cmr_atlas.stats.covariates import index_by_bsa

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def aggregate_measures(paths: Sequence[PathLike], covariates_path: PathLike, out_path: PathLike) -> pd.DataFrame:
    """The per-shard measures tables as one table at ``out_path``, with edvi, esvi and lvmi =
    EDV, ESV and LV mass / BSA (null where the covariates give no BSA)."""
    measures = index_by_bsa(concat_tables(list(paths), MEASURES), pd.read_parquet(covariates_path))
    write_table(measures, out_path, MEASURES)
    log.info("measures: %d rows, %d indexed by BSA", len(measures), int(measures["edvi"].notna().sum()))
    return measures


def aggregate_fit_tables(shard_paths: Mapping[str, Sequence[PathLike]], covariates_path: PathLike,
                         out_paths: Mapping[str, PathLike]) -> None:
    """Every LV model table (:data:`TABLES`, and the per-frame :data:`CYCLE_TABLES` named in
    ``out_paths``) at ``out_paths[name]`` from ``shard_paths[name]``; the measures indexed by BSA
    (:func:`aggregate_measures`)."""
    schemas = [s for s in TABLES.values() if s is not MEASURES] + list(CYCLE_TABLES.values())
    aggregate_tables(shard_paths, out_paths, schemas)
    aggregate_measures(shard_paths["measures"], covariates_path, out_paths["measures"])
