"""End-to-end throughput of the workflow on this machine, per stage, from Snakemake's benchmark files.

    python benchmarks/throughput.py --cohort DIR [--results DIR] [--cores 2] [--shard-size N]
                                    [--models-dir resources/models | --tiny-models]
    python benchmarks/throughput.py --report-only --results DIR --cohort DIR
    python benchmarks/throughput.py --cohort DIR --runtime torch   # the networks in PyTorch (before/after)
    python benchmarks/throughput.py --cohort DIR --set fit.all_frames=false  # ED + ES fits only
    python benchmarks/throughput.py --cohort DIR --set fit.all_frames=false inference.frames=ed_es
                                    # ... and the networks on the ED + ES images only

Runs `snakemake --cores N` on an existing (synthetic) cohort (`cmr-atlas synth --n-exams 50 ...`),
then reads RESULTS/benchmarks/<rule>[/<shard>].tsv (written by the rules' `benchmark:` directives)
and prints, per rule: jobs, wall seconds summed over its jobs, seconds per exam, exams per hour of
one job slot, peak memory (max_rss, MiB) of its largest job; the whole run's wall time and exams
per hour; and the extrapolation to a 5,000-exam cohort on the same machine and on a cluster.

Floors, measured in the same run on the exams of the first shard: bare pydicom (`dcmread` +
`pixel_array` of every file of the exam folders, one process, ``--floor-repeats`` passes: the
first reads from disk what the page cache does not hold, the fastest is warm; both printed with
the bytes read from disk, and the ingest job's) beside ingest, and the networks' pure forward time on
as many network-grid images as those exams needed (SAX frames for the segmentation, LAX frames and
SAX ED/ES for the landmarks; the job's threads, the configured precision) beside inference, with
the ratio stage / floor; and the per-exam stages' sum against the pydicom floor.

Accuracy guard, in the same run with ``--accuracy-exams N`` (after the timing, so it does not
disturb it): ``benchmarks/accuracy.py`` on the first N exams of the held-out synthetic test cohort
(cohort seed 30001, kept in ``--accuracy-keep`` so that repeated runs evaluate the same exams)
with the networks and precision of this run: landmark distances, Dice, ED/ES frames, EDV/ESV/EF/mass
against the truth.  Compare its tables with those of an earlier run (the figures of record are in
docs/models.md); without the option the command that prints them is shown.

``--runtime`` sets the run's ``inference.runtime`` (default: the config's, ``auto`` = ONNX Runtime on
the CPU); the forward floor uses the same runtime; the accuracy guard always uses the default.

--tiny-models uses untrained 4-channel networks (tests/slurm/tiny_models.py): every stage runs, but
the inference figure is then not that of the shipped networks (and auto fits fail early).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cmr_atlas.core.config import (ConfigError, apply_overrides, default, load_config,  # noqa: E402
                                    parse_override)
from cmr_atlas.core.shards import read_folder_list  # noqa: E402

# every per-shard job of the legacy protocol, including the perfusion, TI-scout and tissue jobs that
# find no such series in a legacy shard (their start-up is per-exam cost too)
PER_SHARD = ["ingest_shard", "infer_shard", "auto_guide_points_shard", "manual_guide_points_shard",
             "guide_points_shard", "fit_shard", "perfusion_shard", "tiscout_shard", "tissue_shard"]
COHORT_RULES = ["ingest", "covariates", "guide_points", "fit", "atlas", "stats", "report"]


def job_threads(log: Path) -> dict[str, int]:
    """``{benchmark file: threads}`` of the jobs in a Snakemake log (a job block names its benchmark
    file, then ``threads: N`` where N > 1)."""
    out, current = {}, None
    for line in log.read_text().splitlines() if log.is_file() else []:
        s = line.strip()
        if s.startswith("benchmark: "):
            current = s.removeprefix("benchmark: ")
            out[current] = 1
        elif s.startswith("threads: ") and current:
            out[current] = int(s.removeprefix("threads: "))
        elif not s:
            current = None
    return out


def read_benchmarks(results: Path) -> pd.DataFrame:
    rows = []
    threads = job_threads(results / "throughput-snakemake.log")
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.parent.name if tsv.parent.name != "benchmarks" else tsv.stem
        df = pd.read_csv(tsv, sep="\t")
        for _, r in df.iterrows():
            rows.append({"rule": rule, "job": tsv.stem, "s": float(r["s"]), "threads": threads.get(str(tsv), 1),
                         "max_rss_mib": pd.to_numeric(r.get("max_rss"), errors="coerce"),
                         "cpu_time_s": pd.to_numeric(r.get("cpu_time"), errors="coerce"),
                         "io_in_mb": pd.to_numeric(r.get("io_in"), errors="coerce")})
    return pd.DataFrame(rows)


def n_exams(results: Path) -> tuple[int, str]:
    """(exam folders in the run, a status summary when the exam table exists)."""
    from cmr_atlas.core.shards import read_manifest

    n = len(read_manifest(results / "shards" / "manifest.tsv"))
    p = results / "exams.parquet"
    if not p.exists():
        return n, "exam table not built (partial run)"
    ex = pd.read_parquet(p)
    return n, ", ".join(f"{k} {v}" for k, v in ex["status"].value_counts().items())


def report(results: Path, wall_s: float | None, cores: int, target: int = 5000) -> dict[str, float]:
    """Print the per-rule table and extrapolation; returns wall seconds per exam of each per-shard rule.

    Two sums over the per-exam (per-shard) stages: wall seconds per exam (the issue's figure), and
    slot seconds per exam, wall x the job's threads: a job with 2 threads holds 2 of Snakemake's
    ``--cores`` for its whole run, so slot seconds are what the machine spends and what the
    extrapolation divides over the cores."""
    bm = read_benchmarks(results)
    if bm.empty:
        sys.exit(f"no benchmark files under {results}/benchmarks")
    n, status = n_exams(results)
    n_shards = bm[bm.rule == "ingest_shard"].shape[0]
    print(f"cohort: {n} exam folders ({status}), {n_shards} shards benchmarked; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'rule':28s} {'jobs':>4s} {'thr':>3s} {'wall s':>8s} {'cpu s':>8s} {'wall s/exam':>11s} "
          f"{'slot s/exam':>11s} {'cpu s/exam':>10s} {'max_rss MiB':>11s}")
    wall_per_exam = slot_per_exam = slot_agg = 0.0
    per_exam: dict[str, float] = {}
    for rule in PER_SHARD + COHORT_RULES:
        g = bm[bm.rule == rule]
        if g.empty:
            continue
        s, c, slot = g["s"].sum(), g["cpu_time_s"].sum(), (g["s"] * g["threads"]).sum()
        if rule in PER_SHARD:  # per exam of the shards this rule has finished
            m = sum(len(read_folder_list(results / "shards" / j / "folders.txt")) for j in g["job"])
            wall_per_exam += s / m
            slot_per_exam += slot / m
            per_exam[rule] = s / m
        else:
            m = n
            slot_agg += slot
        print(f"{rule:28s} {len(g):4d} {g['threads'].max():3d} {s:8.1f} {c:8.1f} {s / m:11.2f} {slot / m:11.2f} "
              f"{c / m:10.2f} {g['max_rss_mib'].max():11.0f}")
    print(f"per-exam stages, summed: {wall_per_exam:.2f} s wall per exam; {slot_per_exam:.2f} slot s per exam "
          f"(wall x threads) -> {cores * 3600 / slot_per_exam:.0f} exams/hour on {cores} slots "
          f"(at load {os.getloadavg()[0]:.1f}; cpu s is Snakemake's sampled CPU time and undercounts "
          f"short processes)")
    print(f"cohort-level stages: {slot_agg:.1f} slot s for {n} exams")
    if wall_s:
        print(f"end to end: {wall_s:.0f} s wall for {n} exams = {n * 3600 / wall_s:.0f} exams/hour "
              f"(--cores {cores})")
    # Extrapolation: per-shard stages scale with the number of exams and run in parallel over job
    # slots.  Cohort-level stages are start-up dominated on small cohorts; they are extrapolated
    # linearly (an upper bound) only from cohorts of 20 exams or more.
    shard_h = slot_per_exam * target / 3600
    line = (f"extrapolation to {target} exams: per-exam stages {shard_h:.1f} slot-hours -> "
            f"{shard_h / cores:.1f} h on this {cores}-core machine, {shard_h / 50:.2f} h on 50 job slots")
    if n >= 20:
        line += f"; cohort-level stages <= {slot_agg * target / n / 3600:.1f} h (linear bound)"
    else:
        line += f"; cohort-level stages not extrapolated from {n} exams (start-up dominated)"
    print(line)
    return per_exam


def _disk_read_bytes() -> int:
    """Bytes this process has read from storage so far (Linux /proc/self/io; 0 elsewhere)."""
    try:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("read_bytes:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _pydicom_floor(cohort: Path, folders: list[str], repeats: int = 3) -> list[tuple[float, int]]:
    """Seconds to dcmread + decode every file of ``folders`` (bare pydicom, one process) and the
    bytes read from storage, for each of ``repeats`` passes.  The first pass reads what the page
    cache does not hold (on this VM the host reclaims the cache, so a cohort's files are read from
    disk again minutes later, as the ingest job read them); the later passes are warm."""
    import pydicom

    from cmr_atlas.core.shards import dicom_root

    files = [f for d in folders for f in sorted((dicom_root(cohort) / d).rglob("*")) if f.is_file()]
    passes = []
    for _ in range(max(1, repeats)):
        t, io0 = time.perf_counter(), _disk_read_bytes()
        for f in files:
            try:
                pydicom.dcmread(f).pixel_array
            except Exception:  # noqa: BLE001 - a non-image file costs its read, as in ingest
                pass
        passes.append((time.perf_counter() - t, _disk_read_bytes() - io0))
    return passes


def _forward_floor(results: Path, shard: Path, exam_ids: list[str], models_dir: str, threads: int, precision: str,
                   runtime: str) -> float:
    """Seconds of pure network forward passes for the images inference ran on these exams (the
    shard's ``segmentation_qc`` rows: every SAX image, or those of config ``inference.frames:
    ed_es``): the segmentation as inference runs it (the images on the network grid, on the crop
    around the heart: cine.inference.seg_logits), the landmark networks on as many images as it
    gives them (the LAX frames of the shard's ``landmarks`` table)."""
    import numpy as np
    import torch

    from cmr_atlas.cine.inference import load_models, seg_logits
    from cmr_atlas.core.imagecache import load_exam_images
    from cmr_atlas.nets.preprocess import prepare
    from cmr_atlas.nets.registry import card_grid
    from cmr_atlas.nets.runtime import forward

    torch.set_num_threads(threads)
    models = load_models(models_dir, method="heatmap", device="cpu", precision=precision, runtime=runtime)
    grid, batch, margin = card_grid(models.seg_card), default("inference.batch"), default("inference.crop_margin_mm")
    qc = pd.read_parquet(shard / "segmentation_qc.parquet", columns=["exam_id", "slice_index", "frame"])
    lm = pd.read_parquet(shard / "landmarks.parquet", columns=["exam_id", "view", "frame"])
    lax = lm[(lm["view"] != "sax") & lm["exam_id"].isin(exam_ids)]
    n_lax = len(lax.drop_duplicates(["exam_id", "view", "frame"]))
    n_sax = 0
    total = 0.0
    by_exam = dict(tuple(qc.groupby("exam_id")))
    for i, eid in enumerate(exam_ids):
        im = load_exam_images(results / "cache" / f"{eid}.npz")
        n_sax += im.n_slices * 2  # landmarks on SAX at ED and ES
        x = np.concatenate([prepare(im.sax[s], plane, grid) for s, plane in enumerate(im.sax_planes)])
        done = by_exam.get(eid)
        idx = None if done is None else done["slice_index"].to_numpy(int) * im.n_frames + done["frame"].to_numpy(int)
        if i == 0:
            forward(models.seg, x[:batch], models.device, batch, models.dtype)  # warm-up
        t = time.perf_counter()
        seg_logits(models.seg, models.seg_card, x, im.n_frames, models, batch=batch, crop_margin_mm=margin, images=idx)
        total += time.perf_counter() - t
    for model, n in ((models.landmark["lax"][0], n_lax), (models.landmark["sax"][0], n_sax)):
        x = np.random.default_rng(0).normal(size=(n, grid.size, grid.size)).astype(np.float32)
        forward(model, x[:batch], models.device, batch, models.dtype)  # warm-up
        t = time.perf_counter()
        forward(model, x, models.device, batch, models.dtype)
        total += time.perf_counter() - t
    return total


def floors(results: Path, cohort: Path, models_dir: str, stage_s_per_exam: dict[str, float], runtime: str,
           repeats: int = 3) -> None:
    """Print the floors beside ingest and inference, measured now on the first shard's exams."""
    shard = sorted(p for p in (results / "shards").iterdir() if p.is_dir())[0]
    folders = read_folder_list(shard / "folders.txt")
    ex = pd.read_parquet(shard / "exams.parquet")
    ok = ex.loc[ex["status"] == "ok", "exam_id"].tolist()
    if not folders or not ok:
        print("floors: the first shard has no ok exam")
        return
    passes = _pydicom_floor(cohort, folders, repeats)
    (first_s, first_io), warm_s = passes[0], min(t for t, _ in passes)
    dicom_s = warm_s / len(folders)
    bm = read_benchmarks(results)
    threads = int(bm.loc[bm.rule == "infer_shard", "threads"].max()) if (bm.rule == "infer_shard").any() else 1
    net_s = _forward_floor(results, shard, ok, models_dir, threads=threads, precision=default("inference.precision"),
                           runtime=runtime) / len(ok)
    ingest_io = bm.loc[bm.rule == "ingest_shard", "io_in_mb"].sum() if "io_in_mb" in bm else float("nan")
    print(f"floors (first shard, {len(folders)} exam folders, measured now): stage s/exam, floor s/exam, ratio")
    print(f"  bare pydicom: first pass {first_s / len(folders):.2f} s/exam ({first_io / 2**20:.0f} MiB from disk), "
          f"fastest of {len(passes)} {dicom_s:.2f} (warm); the ingest job read {ingest_io:.0f} MiB from disk")
    for rule, floor, what in (("ingest_shard", dicom_s, "bare pydicom dcmread + pixel_array, warm"),
                              ("infer_shard", net_s, f"network forward passes only, runtime {runtime}, "
                                                     f"{threads} thread(s) as the job")):
        if rule in stage_s_per_exam:
            st = stage_s_per_exam[rule]
            print(f"  {rule:22s} {st:6.2f} {floor:6.2f} {st / floor:6.1f}x  ({what})")
    total = sum(stage_s_per_exam.values())
    for floor, what in ((dicom_s, "warm"), (first_s / len(folders), "first pass")):
        print(f"  {'per-exam stages, summed':22s} {total:6.2f} {floor:6.2f} {total / floor:6.1f}x  "
              f"(against bare pydicom, {what}; the throughput issue's goal: <= 10x)")


def run_frames(results: Path) -> str | None:
    """Config ``inference.frames`` of the run in ``results`` (None: not set, or no run there)."""
    cfg = results / "throughput-config.yaml"
    return yaml.safe_load(cfg.read_text()).get("inference", {}).get("frames") if cfg.is_file() else None


def accuracy_guard(models_dir: str, n: int, keep: str, frames: str | None = None) -> None:
    """Run benchmarks/accuracy.py on ``n`` held-out test exams (or print the command when n = 0);
    ``frames``: the run's config ``inference.frames`` (None: its default)."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "accuracy.py"), "--n-exams", str(n or 20),
           "--keep-exams", keep, "--models-dir", str(Path(models_dir).resolve()),
           "--precision", default("inference.precision"), "--out", str(Path(keep) / "bland_altman"),
           "--frames", frames or default("inference.frames")]
    if not n:
        print("accuracy guard not run (--accuracy-exams N runs it here): PYTHONPATH=. " + " ".join(cmd[1:]))
        return
    print(f"accuracy guard: {n} held-out test exams (benchmarks/accuracy.py)", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stderr=subprocess.DEVNULL)


def _dotted(cfg: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for k, v in cfg.items():
        out.update(_dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def run_config(base: dict, settings: list[str]) -> dict:
    """``base`` with each ``KEY=VALUE`` of ``settings`` set (the CLI's ``--set`` syntax: dotted keys,
    values read as YAML), checked against the workflow's schema, on top of its config/config.yaml
    as Snakemake will read it, before anything runs."""
    try:
        overrides = dict(parse_override(t) for t in settings)
        cfg = apply_overrides(copy.deepcopy(base), overrides)
        load_config(REPO / "config" / "config.yaml", {**_dotted(base), **overrides})
    except ConfigError as exc:
        sys.exit(f"--set: {exc}")
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--n-exams", type=int, default=None,
                    help="use only the first N exam folders (linked into a sub-cohort)")
    ap.add_argument("--results", default=None, help="default: a temporary folder")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=None,
                    help="exams per shard (default: the cohort over the cores, at most the config's "
                         "shard_size: every core has a shard, each as large as the cohort allows)")
    ap.add_argument("--models-dir", default=default("models_dir"), help="config models_dir")
    ap.add_argument("--tiny-models", action="store_true")
    ap.add_argument("--runtime", choices=["auto", "torch", "onnxruntime"], default=default("inference.runtime"),
                    help="config inference.runtime of the run (torch: the networks in PyTorch, for a before/after)")
    ap.add_argument("--set", dest="settings", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config settings of the run, dotted keys (e.g. fit.all_frames=false: the legacy "
                         "protocol's ED + ES fits only, the throughput issue's scope)")
    ap.add_argument("--floor-repeats", type=int, default=3,
                    help="passes of the bare pydicom floor (the first reads from disk what is not cached; "
                         "the fastest is the warm floor)")
    ap.add_argument("--report-only", action="store_true", help="only read an earlier run's benchmarks")
    ap.add_argument("--target", type=int, default=5000)
    ap.add_argument("--accuracy-exams", type=int, default=0,
                    help="run benchmarks/accuracy.py on this many held-out test exams after the timing")
    ap.add_argument("--accuracy-keep", default=str(Path(tempfile.gettempdir()) / "cmr-accuracy-exams"),
                    help="folder of the generated held-out test exams (reused between runs)")
    a = ap.parse_args()
    results = Path(a.results or tempfile.mkdtemp(prefix="cmr-throughput-"))
    if a.report_only:
        per_exam = report(results, None, a.cores, a.target)
        floors(results, Path(a.cohort).resolve(), a.models_dir, per_exam, a.runtime, a.floor_repeats)
        accuracy_guard(a.models_dir, a.accuracy_exams, a.accuracy_keep, run_frames(results))
        return
    cohort = Path(a.cohort).resolve()
    if a.n_exams:
        src = cohort / "dicom" if (cohort / "dicom").is_dir() else cohort
        sub = results / "sub_cohort"
        (sub / "dicom").mkdir(parents=True, exist_ok=True)
        for d in sorted(p for p in src.iterdir() if p.is_dir() and p.name != "truth")[:a.n_exams]:
            if not (sub / "dicom" / d.name).exists():
                (sub / "dicom" / d.name).symlink_to(d)
        if (cohort / "truth").is_dir() and not (sub / "truth").exists():
            (sub / "truth").symlink_to(cohort / "truth")  # covariates and manual annotations
        cohort = sub
    if a.shard_size is None:
        n = len([d for d in ((cohort / "dicom") if (cohort / "dicom").is_dir() else cohort).iterdir()
                 if d.is_dir() and d.name != "truth"])
        a.shard_size = max(1, min(default("shard_size"), -(-n // a.cores)))
    models = a.models_dir
    if a.tiny_models:
        from tests.slurm.tiny_models import write_tiny_models

        models = str(write_tiny_models(results / "tiny_models"))
    cfg = results / "throughput-config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump(run_config(
        {"cohort_dir": str(cohort), "results_dir": str(results.resolve()), "shard_size": a.shard_size,
         "models_dir": str(Path(models).resolve()), "inference": {"runtime": a.runtime}}, a.settings)))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "--configfile", str(cfg)]
    print("running:", " ".join(cmd), flush=True)
    t = time.perf_counter()
    with open(results / "throughput-snakemake.log", "w") as log:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t
    if rc != 0:
        sys.exit(f"snakemake failed (exit {rc}); see {results / 'throughput-snakemake.log'}")
    per_exam = report(results, wall, a.cores, a.target)
    if not a.tiny_models:
        floors(results, cohort, models, per_exam, a.runtime, a.floor_repeats)
        accuracy_guard(models, a.accuracy_exams, a.accuracy_keep, run_frames(results))
    print(f"results: {results}")


if __name__ == "__main__":
    main()
