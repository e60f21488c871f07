"""Shard membership at cohort scale: deterministic, append-only, and what Snakemake really reruns
when exams are added (a dry run against a finished results folder of empty outputs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.shards import assign_shards, read_manifest, update_manifest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

names = st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), unique=True, max_size=40)


@settings(max_examples=60, deadline=None)
@given(first=names, later=names, size=st.integers(1, 7))
def test_adding_folders_keeps_every_earlier_assignment(first, later, size):
    before = assign_shards(sorted(first), size, {})
    added = [f for f in later if f not in before]
    after = assign_shards(sorted(set(first) | set(added)), size, before)
    assert {f: after[f] for f in before} == before  # nobody moves
    last = max(before.values(), default="s0000")
    for f in added:  # new folders go to the last shard or to new shards
        assert after[f] >= last
    counts: dict[str, int] = {}
    for s in after.values():
        counts[s] = counts.get(s, 0) + 1
    assert max(counts.values(), default=0) <= size


@given(folders=names, size=st.integers(1, 7))
def test_assignment_is_deterministic_and_order_free(folders, size):
    a = assign_shards(sorted(folders), size, {})
    b = assign_shards(sorted(reversed(folders)), size, {})
    assert a == b
    # consecutive shards of sorted folders, each full but the last
    shards = sorted(set(a.values()))
    assert shards == [f"s{i:04d}" for i in range(len(shards))]


def test_removed_folder_leaves_its_shard_and_new_folders_do_not_refill_it():
    prev = assign_shards(["a", "b", "c", "d", "e"], 2, {})
    after = assign_shards(["a", "c", "d", "e", "f"], 2, prev)  # b removed, f added
    assert after["f"] == "s0002" and after["a"] == "s0000" and "b" not in after


def test_manifest_files_untouched_when_membership_unchanged(tmp_path):
    cohort = tmp_path / "cohort"
    for f in ("A", "B", "C"):
        (cohort / f).mkdir(parents=True)
    res = tmp_path / "res"
    update_manifest(cohort, res, 2)
    files = [res / "shards/manifest.tsv", res / "shards/s0000/folders.txt", res / "shards/s0001/folders.txt"]
    old = 1_000_000_000
    for p in files:
        os.utime(p, (old, old))
    assert update_manifest(cohort, res, 2) == {"s0000": ["A", "B"], "s0001": ["C"]}
    assert all(p.stat().st_mtime == old for p in files)
    (cohort / "D").mkdir()
    assert update_manifest(cohort, res, 2)["s0001"] == ["C", "D"]
    assert (res / "shards/s0000/folders.txt").stat().st_mtime == old  # finished shard: same mtime
    assert (res / "shards/s0001/folders.txt").stat().st_mtime > old
    assert read_manifest(res / "shards/manifest.tsv")["D"] == "s0001"


# --- what Snakemake schedules -------------------------------------------------------------------

def _snakemake(*args: str, cwd: Path = REPO) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([*SNAKEMAKE, "--cores", "1", "--nolock", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _jobs(dry_run: str) -> list[tuple[str, str | None]]:
    """(rule, shard) of every job a dry run schedules."""
    jobs, rule = [], None
    for line in dry_run.splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            if rule:
                jobs.append((rule, None))
            rule = m.group(1)
        m = re.match(r"\s+wildcards: shard=(s\d+)", line)
        if m and rule:
            jobs.append((rule, m.group(1)))
            rule = None
    if rule:
        jobs.append((rule, None))
    return jobs


def _finish(dry_run: str, when: float) -> None:
    """Create every output a dry run lists, all with the same mtime: a finished results folder."""
    for line in dry_run.splitlines():
        m = re.match(r"\s+output: (.+)", line)
        if not m:
            continue
        for path in m.group(1).split(", "):
            p = Path(path)
            if p.name == "masks":
                p.mkdir(parents=True, exist_ok=True)
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            os.utime(p, (when, when))


@pytest.mark.slow
def test_adding_exams_reruns_only_the_last_shard(tmp_path):
    cohort, res = tmp_path / "cohort", tmp_path / "res"
    for f in ("E1", "E2", "E3", "E4", "E5"):
        (cohort / f).mkdir(parents=True)
    cfg = ["--config", f"cohort_dir={cohort}", f"results_dir={res}", "shard_size=2"]
    first = _snakemake("-n", *cfg)
    assert {s for _, s in _jobs(first) if s} == {"s0000", "s0001", "s0002"}
    # outputs newer than the shard lists and than the workflow's scripts (Snakemake 9's code trigger
    # reruns a job whose outputs are older than its script)
    now = time.time()
    for p in (res / "shards").rglob("*"):
        os.utime(p, (now - 10, now - 10))
    _finish(first, now)
    assert "Nothing to be done" in _snakemake("-n", *cfg)

    (cohort / "E6").mkdir()  # fills the last shard
    (cohort / "E7").mkdir()  # opens a new one
    jobs = _jobs(_snakemake("-n", *cfg))
    per_shard = {s for _, s in jobs if s}
    assert per_shard == {"s0002", "s0003"}, jobs
    assert ("ingest_shard", "s0000") not in jobs and ("fit_shard", "s0001") not in jobs
    # the cohort tables are rebuilt from every shard's (unchanged) tables
    assert {"ingest", "fit", "guide_points", "atlas"} <= {r for r, s in jobs if s is None}
