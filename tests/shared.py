"""Test data built once per test run and shared by the pytest-xdist processes (a file lock in
the run's temporary folder: the first process to ask builds, the others wait and read)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once per test run, whichever pytest-xdist process asks first; the others
    wait on a file lock and read the same folder (generated cohorts take tens of seconds, and a
    session fixture would otherwise be built once per process).  Callers treat the folder as
    read-only: a test that changes a cohort copies it first."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by its worker processes
    folder, done = root / f"shared-{name}", root / f"shared-{name}.complete"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            build(folder)
            done.touch()
    return folder


def shared_object(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[], object]) -> object:
    """``make()`` once per test run, pickled for the other pytest-xdist processes (a generated exam
    held in memory); each process gets its own unpickled copy."""
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "object.pickle").write_bytes(pickle.dumps(make(), protocol=pickle.HIGHEST_PROTOCOL))

    return pickle.loads((shared_folder(tmp_path_factory, name, build) / "object.pickle").read_bytes())
