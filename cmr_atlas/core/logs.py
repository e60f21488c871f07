"""Logging set-up shared by the workflow scripts and the command line: one format, one place."""

from __future__ import annotations

import logging
import os

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | os.PathLike, level: int = logging.INFO) -> None:
    """Send the root logger's records to ``path`` (a rule's ``log:`` file) in the common format."""
    logging.basicConfig(filename=os.fspath(path), level=level, format=LOG_FORMAT)


def log_to_stderr(verbose: bool = False) -> None:
    """Console logging for ``cmr-atlas``: INFO, or DEBUG with ``--verbose``."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
