"""Progress lines for per-exam loops: ``<stage>: i/N exams (k failed), R exams/h, eta``.

Long shards are otherwise silent for minutes (inference on CPU); one line at most every
``interval_s`` seconds, plus the last one, keeps logs short on 64-exam shards and on 5,000-exam
cohorts alike.
"""

from __future__ import annotations

import logging
import time


class Progress:
    """Count finished units and log the rate and the time left."""

    def __init__(self, log: logging.Logger, stage: str, total: int, interval_s: float = 30.0,
                 unit: str = "exams") -> None:
        self.log, self.stage, self.total, self.interval_s, self.unit = log, stage, total, interval_s, unit
        self.done = self.failed = 0
        self.start = self._last = time.monotonic()

    def update(self, failed: bool = False) -> None:
        """Record one finished unit (``failed`` if it ended in failure)."""
        self.done += 1
        self.failed += int(failed)
        now = time.monotonic()
        if now - self._last >= self.interval_s or self.done == self.total:
            self._last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate_h = self.done / elapsed * 3600.0
        left = (self.total - self.done) / (self.done / elapsed) if self.done else float("nan")
        return (f"{self.stage}: {self.done}/{self.total} {self.unit} ({self.failed} failed), "
                f"{rate_h:.0f} {self.unit}/h, eta {left:.0f} s")
