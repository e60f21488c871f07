"""Generate a cohort's exams in worker processes, reporting progress as each exam finishes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from cmr_atlas.core.progress import Progress

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
