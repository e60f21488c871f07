"""Add a generated cohort to an existing one (``cmr-atlas synth --append``): a cohort folder that
mixes protocols, as a real archive does (legacy MESA cine beside modern clinical exams)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cmr_atlas.core.tables import TableSchema, concat_tables
from cmr_atlas.synth import truth as T
from cmr_atlas.synth.clinical.cohort import truth_schemas as clinical_truth_schemas


class MergeError(ValueError):
    """The two cohorts cannot be merged (the message says why)."""


def _truth_schemas() -> dict[str, TableSchema]:
    return {s.name: s for s in (*T.TRUTH_TABLES, *clinical_truth_schemas())}


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def check_new_exams(exams: list[str], dst: str | Path) -> None:
    """Raise :class:`MergeError` if any of the exam folders ``exams`` is already in ``dst/dicom``
    (the CLI asks before generating, so a clash costs no generation time)."""
    dst = Path(dst)
    clash = [e for e in exams if (dst / "dicom" / e).exists()]
    if clash:
        raise MergeError(f"exam folders already in {dst / 'dicom'}: {_some(clash)} (same protocol and seed twice?)")


def check_no_other_exams(exams: list[str], dst: str | Path) -> None:
    """Raise :class:`MergeError` if ``dst/dicom`` holds exam folders other than ``exams``: a cohort
    written there (not merged) rewrites the truth tables for its own exams, leaving the others
    without their truth.  The same exams again are fine (same seed, same bytes)."""
    dicom, ours = Path(dst) / "dicom", set(exams)
    other = sorted(p.name for p in dicom.iterdir() if p.is_dir() and p.name not in ours) if dicom.is_dir() else []
    if other:
        raise MergeError(f"{dicom} already holds other exams ({_some(other)}), whose truth would be lost")


def merge_cohort(src: str | Path, dst: str | Path) -> list[str]:
    """Move ``src``'s exam folders into ``dst/dicom`` and append its truth tables to ``dst/truth``.

    A truth table only one side has is copied (a legacy cohort has no perfusion truth).  Exam
    folders already present in ``dst`` (the same protocol and seed twice) stop the merge before
    anything is moved.  Returns the exam folders added.
    """
    src, dst = Path(src), Path(dst)
    exams = sorted(p.name for p in (src / "dicom").iterdir() if p.is_dir())
    check_new_exams(exams, dst)
    schemas = _truth_schemas()
    tables = {}
    for path in sorted((src / "truth").glob("*.parquet")):
        schema = schemas.get(path.stem)
        if schema is None:
            raise MergeError(f"unknown truth table {path.name}")
        old = dst / "truth" / path.name
        tables[path.name] = (concat_tables([old, path], schema) if old.exists() else pd.read_parquet(path), schema)
    for name, (df, schema) in tables.items():
        T.write_truth_table(df, dst / "truth" / name, schema)
    (dst / "dicom").mkdir(parents=True, exist_ok=True)
    for e in exams:
        shutil.move(str(src / "dicom" / e), str(dst / "dicom" / e))
    return exams
