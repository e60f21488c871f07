"""Deterministic, append-only assignment of a cohort's exam folders to shards.

A shard is the unit of work of every per-exam rule: one job per shard and stage, so Python, torch
and the models load once per shard.  The assignment is kept in ``<results>/shards/manifest.tsv``:
folders already listed keep their shard, new folders fill the last shard and then new shards, so
adding exams to a cohort reruns at most one finished shard.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from cmr_atlas.core.tables import atomic_write_bytes


def dicom_root(cohort_dir: str | Path) -> Path:
    """Folder whose entries are the exams: ``<cohort>/dicom`` when present (synthetic layout)."""
    root = Path(cohort_dir)
    return root / "dicom" if (root / "dicom").is_dir() else root


def list_exam_folders(cohort_dir: str | Path) -> list[str]:
    """Top-level entries of the cohort (sorted), each ingested as one unit.

    Hidden entries and the synthetic cohort's ``truth`` folder are skipped.  Loose files at the
    top level form one unit named ``.``.
    """
    root = dicom_root(cohort_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"cohort folder not found: {root}")
    names, loose = [], False
    with os.scandir(root) as it:
        for e in it:
            if e.name.startswith(".") or e.name == "truth":
                continue
            if e.is_dir():
                names.append(e.name)
            else:
                loose = True
    return sorted(names) + (["."] if loose else [])


def read_manifest(path: str | Path) -> dict[str, str]:
    """``{folder: shard}`` from a manifest; empty when it does not exist."""
    p = Path(path)
    if not p.exists():
        return {}
    with open(p, newline="") as fh:
        return {row["folder"]: row["shard"] for row in csv.DictReader(fh, delimiter="\t")}


def assign_shards(folders: list[str], shard_size: int, previous: dict[str, str]) -> dict[str, str]:
    """Assign folders to shards named ``s0000``, ``s0001``...; previous assignments are kept.

    Folders no longer present are dropped from their shard (that shard reruns).
    """
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    present = set(folders)
    assignment = {f: s for f, s in previous.items() if f in present}
    counts: dict[str, int] = {}
    for s in assignment.values():
        counts[s] = counts.get(s, 0) + 1
    shard_no = max((int(s[1:]) for s in counts), default=0)
    for folder in folders:
        if folder in assignment:
            continue
        name = f"s{shard_no:04d}"
        while counts.get(name, 0) >= shard_size:
            shard_no += 1
            name = f"s{shard_no:04d}"
        assignment[folder] = name
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(assignment.items()))


def update_manifest(cohort_dir: str | Path, results_dir: str | Path, shard_size: int) -> dict[str, list[str]]:
    """Refresh ``<results>/shards/manifest.tsv`` and per-shard ``folders.txt``; return shard -> folders.

    Files are rewritten only when their content changes, so finished shards keep their mtimes.
    """
    shard_dir = Path(results_dir) / "shards"
    manifest = shard_dir / "manifest.tsv"
    assignment = assign_shards(list_exam_folders(cohort_dir), shard_size, read_manifest(manifest))
    text = "folder\tshard\n" + "".join(f"{f}\t{s}\n" for f, s in assignment.items())
    _write_if_changed(manifest, text)
    shards: dict[str, list[str]] = {}
    for folder, shard in assignment.items():
        shards.setdefault(shard, []).append(folder)
    for shard, members in shards.items():
        _write_if_changed(shard_dir / shard / "folders.txt", "".join(f"{m}\n" for m in sorted(members)))
    return dict(sorted(shards.items()))


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    atomic_write_bytes(path, text.encode())


def read_folder_list(path: str | Path) -> list[str]:
    """Folders of one shard from its ``folders.txt``."""
    return [line for line in Path(path).read_text().splitlines() if line]


def select_folders(cohort_dir: str | Path, folders: list[str] | None = None,
                   folders_file: str | Path | None = None) -> list[str]:
    """The cohort's exam folders (sorted), restricted to those in ``folders_file`` and ``folders``.

    Folders listed in the file but absent from the cohort are dropped; a name in ``folders`` that
    is not in the cohort is an error (the message gives their number only: names are identifiers).
    """
    selected = list_exam_folders(cohort_dir)
    if folders_file is not None:
        wanted = set(read_folder_list(folders_file))
        selected = [f for f in selected if f in wanted]
    if folders:
        unknown = set(folders) - set(selected)
        if unknown:
            raise ValueError(f"{len(unknown)} requested folder(s) are not in the cohort")
        selected = [f for f in selected if f in set(folders)]
    return selected


def shard_exam_ids(exams_parquet: str | Path) -> list[str]:
    """Exam ids with status ok from an ingest ``exams.parquet`` (all of them if it has no status)."""
    import pandas as pd

    df = pd.read_parquet(exams_parquet)
    if "exam_id" not in df.columns:
        raise ValueError(f"{exams_parquet}: no exam_id column")
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    return sorted(df["exam_id"].astype(str).unique())
