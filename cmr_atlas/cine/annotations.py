"""The manual path's guide points from an annotations folder (a core lab's, or the synthetic truth).

An annotations folder holds ``contours.parquet`` and ``landmarks.parquet`` in the documented truth
format, keyed by exam folder name; ingest's ``exam_keys`` (keyed hashes of the folder names) maps
them to exam ids without writing any identifier.  With the automated guide points given (config
``manual_landmarks_from_auto``), landmarks the annotations lack are taken from them
(:func:`~cmr_atlas.cine.guidepoints.landmarks_from_auto`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cmr_atlas.cine.guidepoints import GUIDE_POINTS, landmarks_from_auto, manual_guide_points
from cmr_atlas.core.config import default
from cmr_atlas.core.ids import folder_map
from cmr_atlas.core.tables import write_table
from cmr_atlas.core.vocab import PHASES

log = logging.getLogger(__name__)


def _exam_labels(path: Path) -> set[str]:
    return set(pq.read_table(path, columns=["exam_id"]).column("exam_id").unique().to_pylist())


def _observers(path: Path, labels: list[str]) -> set[str]:
    """The observers with rows for these exams (one column read, filtered in the reader)."""
    if not labels:
        return set()
    return set(pq.read_table(path, columns=["observer"], filters=[("exam_id", "in", labels)])
               .column("observer").unique().to_pylist())


def _read_annotations(path: Path, labels: list[str], observer: str) -> pd.DataFrame:
    """ED/ES rows of these exams by this observer only: the filter is pushed into the parquet
    reader, so a shard job's memory and time follow the shard's annotations, not the cohort's (a
    300-exam synthetic truth is 11 M rows, its ``truth`` observer's contours in every frame)."""
    if not labels:
        return pd.read_parquet(path).iloc[:0]
    return pd.read_parquet(path, filters=[("exam_id", "in", labels), ("observer", "==", observer),
                                          ("phase", "in", list(PHASES))])


def build_manual(annotations: Path, slices: pd.DataFrame, exam_keys: pd.DataFrame, key: str,
                 observer: str | None = None, auto: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read an annotations folder and build manual guide points for the exams in ``exam_keys``
    (``observer``: default the config's ``manual_observer``; 'truth' where it is absent).  ``auto``:
    the automated guide points whose landmarks fill the (phase, view)s without manual landmarks."""
    observer = observer or default("manual_observer")
    paths = {t: Path(annotations) / f"{t}.parquet" for t in ("contours", "landmarks")}
    labels = sorted(_exam_labels(paths["contours"]) | _exam_labels(paths["landmarks"]))
    mapping = folder_map(exam_keys, labels, key)
    wanted = sorted(mapping)
    present = _observers(paths["contours"], wanted)
    if present and observer not in present:
        log.warning("annotations have no observer %r for these exams; using 'truth'", observer)
        observer = "truth"
    contours, landmarks = (_read_annotations(p, wanted, observer) for p in paths.values())
    gp = manual_guide_points(contours, landmarks, slices, mapping, observer)
    log.info("manual guide points: %d points for %d exams (observer %s)", len(gp), gp["exam_id"].nunique(), observer)
    if auto is not None:
        gp = _fill_landmarks(gp, auto)
    return gp


def _fill_landmarks(manual: pd.DataFrame, auto: pd.DataFrame) -> pd.DataFrame:
    filled = landmarks_from_auto(manual, auto)
    added = filled.iloc[len(manual):]
    for exam, g in added.groupby("exam_id"):
        log.info("exam %s: %d landmarks from the automated source (%s)", exam, len(g),
                 ", ".join(f"{p} {v}" for p, v in sorted(set(zip(g["phase"], g["view"])))))
    return filled


def write_manual_guide_points(annotations: str | os.PathLike | None, slices_path: str | os.PathLike,
                              exam_keys_path: str | os.PathLike, key: str, observer: str | None,
                              out_path: str | os.PathLike,
                              auto_guide_points: str | os.PathLike | None = None) -> pd.DataFrame:
    """The manual guide-point table of the exams in ``exam_keys_path``, written to ``out_path``;
    empty (the manual path off) when ``annotations`` is empty or None.  ``auto_guide_points``: the
    shard's automated guide-point table, to take the landmarks the annotations lack from (config
    ``manual_landmarks_from_auto``); None = manual landmarks only."""
    if annotations:
        # landmark rows only: a shard's automated contours are most of the table
        auto = pd.read_parquet(auto_guide_points, filters=[("kind", "==", "landmark")]) if auto_guide_points else None
        gp = build_manual(Path(annotations), pd.read_parquet(slices_path), pd.read_parquet(exam_keys_path),
                          key, observer, auto)
    else:
        log.info("no manual annotations configured: the manual path is empty")
        gp = GUIDE_POINTS.empty()
    write_table(gp, out_path, GUIDE_POINTS)
    return gp
