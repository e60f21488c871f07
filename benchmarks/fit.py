"""Speed of the LV model fit: seconds per frame (ED or ES) on one core.

Usage:
    PYTHONPATH=$PWD python benchmarks/fit.py                 # known-LV fixtures
    PYTHONPATH=$PWD python benchmarks/fit.py --cohort DIR    # synthetic cohort truth contours
    PYTHONPATH=$PWD taskset -c 0 python benchmarks/fit.py --stage CACHE --seed 60001 --n 16
        # the fit stage's work per exam (ED/ES fits of the automated and a manual-like source, LAX
        # registration, every frame with surfaces, tables) on benchmarks/motion.py --cnn --cache CACHE
    PYTHONPATH=$PWD python benchmarks/fit.py --shard RESULTS/shards/s0000 [--image-cache RESULTS/cache]
        # the workflow's fit_shard on one shard of a results folder, part by part (CPU s per exam;
        # read only: the tables stay in memory), as workflow/scripts/fit.py runs it with the defaults

One frame = one phase's endo + epi fit; an exam fits ED and ES together (they share the slice
shifts), so seconds per frame = exam wall time / 2.  Threads are pinned to one before numpy loads.
For comparison, biv-me takes 15-19 s per frame on this kind of machine (docs/lvmodel.md).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit_accuracy import cohort_cases, fixture_cases  # noqa: E402

from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.geometry import planes_by_slice  # noqa: E402
from cmr_atlas.cine.lvmodel.exam import fit_exam  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", type=Path)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes (the best is reported)")
    ap.add_argument("--stage", type=Path, help="benchmarks/motion.py --cache folder: time the fit stage per exam")
    ap.add_argument("--seed", type=int, default=60001, help="--stage: the cached cohort")
    ap.add_argument("--shard", type=Path, help="a results folder's shards/<shard>: time fit_shard's parts on it")
    ap.add_argument("--image-cache", type=Path, help="--shard: the image cache (default: RESULTS/cache)")
    args = ap.parse_args(argv)
    if args.stage:
        return stage(args.stage, args.seed, args.n, args.repeat)
    if args.shard:
        return shard(args.shard, args.image_cache or args.shard.parents[1] / "cache", args.repeat)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    cases = cohort_cases(args.cohort) if args.cohort else fixture_cases(args.n, 200, 3.0, 0.5)
    prepared = [(c, planes_by_slice(c.slices, c.exam_id)) for c in cases]
    shift_reference = default("fit.shift_reference")  # the workflow's setting
    n_points = np.mean([(c.guide_points["kind"] == "contour").sum() for c in cases])
    fit_exam(prepared[0][0].guide_points, prepared[0][1], "warm", "truth", breath_hold=True,
             shift_reference=shift_reference)  # imports, caches
    print(f"{len(cases)} exams, {n_points:.0f} contour points per exam (ED+ES), 1 thread")
    for bh in (True, False):
        wall, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            for c, planes in prepared:
                fit_exam(c.guide_points, planes, c.exam_id, "truth", breath_hold=bh, shift_reference=shift_reference)
            wall.append((time.perf_counter() - t0) / (2 * len(prepared)))
            cpu.append((time.process_time() - c0) / (2 * len(prepared)))
        print(f"breath-hold {'on ' if bh else 'off'}: {min(wall):.3f} s per frame wall clock, "
              f"{min(cpu):.3f} s CPU (best of {args.repeat}; median wall {np.median(wall):.3f})")
    print("CPU time = what one idle core would take; wall clock includes waiting for a shared CPU")
    return 0


def stage(cache: Path, seed: int, n: int, repeat: int) -> int:
    """CPU seconds per exam of what ``fit_shard`` computes for it (reading and writing files and
    building the guide points excluded): the automated source's ED/ES fit, its LAX registration and
    refit, a manual-like source's ED/ES fit (the truth's ED/ES contours, LAX contours included, as
    an observer draws them), the automated per-frame fits with surfaces, and the tables."""
    import pickle

    from motion import truth_cycle_guide_points

    from cmr_atlas.cine.lvmodel.cycle import fit_cycle
    from cmr_atlas.cine.lvmodel.lax_shifts import fit_exam_lax_registered
    from cmr_atlas.cine.lvmodel.outputs import tables_from_cycles, tables_from_fits

    exams = []
    for i in range(n):
        with open(cache / f"cnn_{seed}_{i}.pkl", "rb") as fh:
            truth, cgp, images = pickle.load(fh)
        label = str(truth["exams"]["exam_id"].iloc[0])
        tg = truth_cycle_guide_points(truth)
        manual = tg[tg["phase"].isin(["ED", "ES"])].drop(columns="time_ms").assign(source="manual")
        auto = cgp[cgp["phase"].isin(["ED", "ES"])].drop(columns="time_ms")
        exams.append((label, planes_by_slice(truth["slices"], label), auto, cgp, manual, images))
    ref = default("fit.shift_reference")
    parts = {k: [] for k in ("auto ED/ES", "registration+refit", "manual ED/ES", "cycle", "tables", "total")}
    for _ in range(repeat):
        acc = {k: 0.0 for k in parts}
        for label, planes, auto, cgp, manual, images in exams:
            t = [time.process_time()]
            a = fit_exam(auto, planes, label, "auto", breath_hold=True, shift_reference=ref)
            t.append(time.process_time())
            a = fit_exam_lax_registered(auto, planes, images, label, "auto", breath_hold=True,
                                        shift_reference=ref, first=a)
            t.append(time.process_time())
            m = fit_exam(manual, planes, label, "manual", breath_hold=True, shift_reference=ref)
            t.append(time.process_time())
            c = fit_cycle(cgp, planes, a, keep_surfaces=True)
            t.append(time.process_time())
            tables_from_fits([a, m])
            tables_from_cycles([c])
            t.append(time.process_time())
            for k, dt in zip(parts, np.diff(t)):
                acc[k] += dt / len(exams)
            acc["total"] += (t[-1] - t[0]) / len(exams)
        for k in parts:
            parts[k].append(acc[k])
    frames = np.mean([c["frame"].nunique() for _, _, _, c, _, _ in exams])
    print(f"fit stage per exam, cohort {seed} ({len(exams)} exams, {frames:.1f} SAX frames), CPU s, one thread, "
          f"best of {repeat}:")
    print("  " + ", ".join(f"{k} {min(v):.3f}" for k, v in parts.items()))
    return 0


def shard(folder: Path, cache: Path, repeat: int) -> int:
    """CPU seconds per exam of each part of ``fit_shard`` (cmr_atlas.cine.lvmodel.run) on one shard,
    in its order, with the config's defaults (the workflow's): reading the guide points and slices,
    the ED/ES fits of every source, the LAX registration and refit, every frame's automated guide
    points, the per-frame fits (with surfaces), the tables (built, not written); best of ``repeat``."""
    import inspect

    from cmr_atlas.cine.guidepoints import GUIDE_POINTS
    from cmr_atlas.cine.lvmodel import run
    from cmr_atlas.cine.lvmodel.outputs import tables_from_cycles, tables_from_fits
    from cmr_atlas.core.tables import read_table

    cycle = run.CycleInputs(folder / "exams.parquet", cache, folder / "landmarks.parquet",
                            folder / "segmentation_qc.parquet", folder / "phases.parquet", folder / "masks")
    bh, ref = default("fit.breath_hold"), default("fit.shift_reference")
    names = ("read", "ED/ES fits", "LAX registration + refit", "cycle guide points", "cycle fits", "tables")
    # (a checkout before 2026-12-03 registers after the fits, on finished plain fits)
    staged = "lax_cache_dir" in inspect.signature(run.fit_exams).parameters
    best = {k: np.inf for k in (*names, "total")}
    for _ in range(repeat):
        t = [time.process_time()]
        plain = getattr(run, "plain_strings", lambda df: df)  # (a checkout before 2026-12-02 has none)
        slices = plain(read_table(folder / "slices.parquet"))
        gp = plain(read_table(folder / "guide_points.parquet", GUIDE_POINTS))
        t.append(time.process_time())
        if staged:  # fit_shard's path: the registration within the fits (its part then reads 0)
            fits = run.fit_exams(gp, slices, bh, None, ref, False, None, cache)
            t.append(time.process_time())
        else:
            fits = run.fit_exams(gp, slices, bh, None, ref, False, None)
            t.append(time.process_time())
            fits = run.register_lax_views(fits, gp, slices, cache, bh, ref)
        t.append(time.process_time())
        cgp = cycle.guide_points()
        t.append(time.process_time())
        cycles = run.cycle_fits(fits, cgp, slices)
        t.append(time.process_time())
        tables_from_fits(fits), tables_from_cycles(cycles)
        t.append(time.process_time())
        n = len({f.exam_id for f in fits})
        for k, dt in zip(names, np.diff(t)):
            best[k] = min(best[k], dt / n)
        best["total"] = min(best["total"], (t[-1] - t[0]) / n)
    sources = sorted({f.source for f in fits})
    note = "; ED/ES fits include the LAX registration" if staged else ""
    print(f"fit_shard on {folder} ({n} exams, sources {', '.join(sources)}), CPU s per exam, one thread, "
          f"best of {repeat}, load {os.getloadavg()[0]:.1f}{note}:")
    print("  " + ", ".join(f"{k} {v:.3f}" for k, v in best.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
