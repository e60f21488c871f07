"""The one per-shard loop and its one failure policy, and the table of per-exam stage outcomes.

Every per-exam stage (ingest, inference, automated guide points, fit) runs its exams through
:func:`run_exams`; one exam that fails never stops the shard.  The policy:

* a stage raises :class:`ExamFailure` for an expected, specific failure: the exam ends ``failed``
  with the failure's ``qc_reason`` (a stable code such as ``no_inference_result``);
* any other exception ends the exam ``failed`` with ``qc_reason = "<stage>_error: <ExceptionType>"``.
  Its message is neither logged nor stored: messages quote file paths, folder names or DICOM
  values, which are identifiers.  The log gets one ERROR line with the exam id (a keyed hash) and
  the qc_reason, and a DEBUG line with where it happened (``file.py:line in function`` for each
  frame of the traceback: code locations, no message, no variables).

``exam_status`` (one row per exam and stage) is what every per-shard stage writes next to its
tables; the workflow concatenates the shards' files into the cohort's ``exam_status.parquet``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from cmr_atlas.core.columns import EXAM_ID
from cmr_atlas.core.progress import Progress
from cmr_atlas.core.tables import Column, TableSchema, register, write_table

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item of a shard (an exam id, a folder, a group)

EXAM_STATUS = register(TableSchema(
    name="exam_status", row="exam and stage",
    description=(
        "Outcome of every exam in every per-exam stage, written per shard "
        "(shards/<shard>/status/<stage>.parquet) and concatenated for the cohort. A failed exam has "
        "a specific qc_reason; `<stage>_error: <ExceptionType>` is an unexpected error (a bug), "
        "whose message is deliberately not kept (it may quote paths or names)."
    ),
    columns=(
        EXAM_ID,
        Column("stage", "str", "ingest, infer, auto_guide_points, tissue, or fit_<source> (fit_auto, fit_manual)",
               nullable=False),
        Column("status", "str", "ok or failed (fit: also partial, as in measures)", nullable=False),
        Column("qc_reason", "str", "failure reason (failed); warnings or null (ok, partial)"),
    ),
))


class ExamFailure(Exception):
    """An expected, specific failure of one exam.

    ``qc_reason`` is a stable code without identifiers; ``value`` is what the stage still
    produced for the failed exam (e.g. a failed fit's slice-summation volumes), or None.
    """

    def __init__(self, qc_reason: str, value: Any = None) -> None:
        super().__init__(qc_reason)
        self.qc_reason = qc_reason
        self.value = value


@dataclass
class Outcome(Generic[T]):
    """How one exam ended in one stage; ``value`` is the stage's result (None when it raised)."""

    exam_id: str
    status: str  # "ok" or "failed"
    qc_reason: str | None = None
    value: T | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def error_reason(stage: str, exc: BaseException) -> str:
    """The stable qc_reason of an unexpected exception: its type only, never its message."""
    return f"{stage}_error: {type(exc).__name__}"


def _where(exc: BaseException) -> str:
    """Code locations of a traceback (``file.py:line in function``), without message or values."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames)) or "?"


def attempt(exam_id: str, work: Callable[[], T], stage: str, log: logging.Logger) -> Outcome[T]:
    """Run ``work()`` for one exam under the failure policy (module docstring)."""
    try:
        return Outcome(exam_id, "ok", None, work())
    except ExamFailure as exc:
        log.warning("%s: exam %s failed (%s)", stage, exam_id, exc.qc_reason)
        return Outcome(exam_id, "failed", exc.qc_reason, exc.value)
    except Exception as exc:  # noqa: BLE001 - one bad exam never stops the shard
        reason = error_reason(stage, exc)
        log.error("%s: exam %s failed (%s)", stage, exam_id, reason)
        log.debug("%s: exam %s: %s raised at %s", stage, exam_id, type(exc).__name__, _where(exc))
        return Outcome(exam_id, "failed", reason)


def run_exams(items: Sequence[I], work: Callable[[I], T], stage: str, log: logging.Logger, *,
              exam_id: Callable[[I], str] = str, unit: str = "exams",
              failed: Callable[[Outcome[T]], bool] = lambda o: not o.ok,
              interval_s: float = 30.0) -> list[Outcome[T]]:
    """Run ``work(item)`` for every item of a shard, in order, with progress lines.

    ``exam_id(item)`` names the exam of an item (the item itself for exam ids); ``failed`` says
    which outcomes the progress line counts as failed (a stage whose item holds several exams
    looks into the value).
    """
    progress = Progress(log, stage, len(items), interval_s=interval_s, unit=unit)
    outcomes = []
    for item in items:
        outcome = attempt(exam_id(item), lambda: work(item), stage, log)
        outcomes.append(outcome)
        progress.update(failed=failed(outcome))
    return outcomes


def status_frame(outcomes: Iterable[Outcome], stage: str) -> pd.DataFrame:
    """``exam_status`` rows of one stage's outcomes."""
    rows = [{"exam_id": o.exam_id, "stage": stage, "status": o.status, "qc_reason": o.qc_reason}
            for o in outcomes]
    return pd.DataFrame(rows, columns=EXAM_STATUS.column_names) if rows else EXAM_STATUS.empty()


def write_status(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write one shard's ``exam_status`` rows of one stage."""
    return write_table(rows, path, EXAM_STATUS)
