"""Generate a cohort's exams in worker processes, reporting progress as each exam finishes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TypeVar

import pandas as pd

from cmr_atlas.core.progress import Progress
from cmr_atlas.core.tables import TableSchema
from cmr_atlas.synth.truth import write_truth_table

PROGRESS_INTERVAL_S = 5.0  # synth is interactive (make demo): report often
R = TypeVar("R")


def map_exams(fn: Callable[[tuple], R], tasks: list[tuple], jobs: int, log: logging.Logger) -> list[R]:
    """``[fn(t) for t in tasks]`` over ``jobs`` processes, in task order; progress as exams finish
    (not once all have), so that a long run shows its rate and time left."""
    progress = Progress(log, "synth", len(tasks), interval_s=PROGRESS_INTERVAL_S)
    results: list = [None] * len(tasks)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                progress.update()
    else:
        for i, t in enumerate(tasks):
            results[i] = fn(t)
            progress.update()
    return results


def write_cohort(out: str | Path, generate_and_write: Callable[[tuple], dict[str, pd.DataFrame]], n_exams: int,
                 seed: int, mi_fraction: float, observers: int, jobs: int, schemas: Iterable[TableSchema],
                 log: logging.Logger) -> Path:
    """Write ``out/dicom/<exam>/...`` and ``out/truth/<table>.parquet``: ``generate_and_write((seed,
    index, mi_fraction, observers, dicom_dir))`` writes exam ``index``'s DICOM and returns its truth
    tables (:func:`map_exams` over ``jobs`` processes); each table of ``schemas`` gathers every exam's
    rows (empty where no exam has that table)."""
    out = Path(out)
    dicom_dir = out / "dicom"
    dicom_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, i, mi_fraction, observers, str(dicom_dir)) for i in range(n_exams)]
    results = map_exams(generate_and_write, tasks, jobs, log)
    for schema in schemas:
        frames = [r[schema.name] for r in results if schema.name in r]
        df = pd.concat(frames, ignore_index=True) if frames else schema.empty()
        write_truth_table(df, out / "truth" / f"{schema.name}.parquet", schema)
    return out
