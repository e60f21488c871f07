"""``cmr-atlas guidepoints``: the manual path's guide points from an annotations folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cmr_atlas.cine.guidepoints import GUIDE_POINTS, manual_guide_points
from cmr_atlas.core.ids import keyed_hash
from cmr_atlas.core.tables import write_table

log = logging.getLogger(__name__)


def folder_map(exam_keys: pd.DataFrame, folders: list[str], key: str) -> dict[str, str]:
    """``{exam folder name: exam_id}`` for the given folders, via ingest's keyed hashes."""
    fk = exam_keys[exam_keys["key_type"] == "exam_folder"]
    by_hash = dict(zip(fk["key_hash"], fk["exam_id"]))
    return {f: by_hash[keyed_hash(f, key)] for f in folders if keyed_hash(f, key) in by_hash}


def _exam_labels(path: Path) -> set[str]:
    return set(pq.read_table(path, columns=["exam_id"]).column("exam_id").unique().to_pylist())


def _read_annotations(path: Path, labels: list[str], observers: list[str]) -> pd.DataFrame:
    """Rows of these exams and observers only: the filter is pushed into the parquet reader, so a
    shard job's memory follows the shard, not the cohort (a 300-exam synthetic truth is 11 M rows)."""
    if not labels:
        return pd.read_parquet(path).iloc[:0]
    return pd.read_parquet(path, filters=[("exam_id", "in", labels), ("observer", "in", observers)])


def build_manual(annotations: Path, slices: pd.DataFrame, exam_keys: pd.DataFrame, key: str,
                 observer: str = "obs1") -> pd.DataFrame:
    """Read an annotations folder and build manual guide points for the exams in ``exam_keys``."""
    paths = {t: annotations / f"{t}.parquet" for t in ("contours", "landmarks")}
    labels = sorted(_exam_labels(paths["contours"]) | _exam_labels(paths["landmarks"]))
    mapping = folder_map(exam_keys, labels, key)
    wanted = sorted(mapping)
    contours, landmarks = (_read_annotations(p, wanted, [observer, "truth"]) for p in paths.values())
    if len(contours) and observer not in set(contours["observer"]):
        log.warning("annotations have no observer %r for these exams; using 'truth'", observer)
        observer = "truth"
    gp = manual_guide_points(contours, landmarks, slices, mapping, observer)
    log.info("manual guide points: %d points for %d exams (observer %s)", len(gp), gp["exam_id"].nunique(), observer)
    return gp


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, help="folder with contours.parquet and landmarks.parquet")
    p.add_argument("--slices", required=True, help="ingested slices table (planes)")
    p.add_argument("--exam-keys", required=True, help="ingested exam_keys table")
    p.add_argument("--key", required=True, help="exam_id_key used at ingest")
    p.add_argument("--observer", default="obs1", help="annotation observer to use (default obs1)")
    p.add_argument("--out", required=True, help="output guide_points parquet")


def run(args: argparse.Namespace) -> int:
    gp = build_manual(Path(args.annotations), pd.read_parquet(args.slices), pd.read_parquet(args.exam_keys),
                      args.key, args.observer)
    write_table(gp, args.out, GUIDE_POINTS)
    return 0
