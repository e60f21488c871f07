"""Volume curves from the LV model at every frame, against the synthetic truth.

    PYTHONPATH=$PWD python benchmarks/motion.py [--n-exams 16] [--seed 40001] [--observer truth]
    PYTHONPATH=$PWD python benchmarks/motion.py --cnn [--n-exams 8]     # the automated path
    PYTHONPATH=$PWD python benchmarks/motion.py --all --n-exams 16 --seed 60001 --cache DIR
        # every figure of issue #17: legacy automated (+ decomposition), clinical, through-plane, speed

Generates a held-out legacy cohort in memory (seed 40001 by default: training uses 910000, the
demo 20001, benchmarks/accuracy.py 30001), builds every frame's guide points from the truth
contours and landmarks (observer ``truth``: contours on every frame, displaced by the breath-hold
shifts), fits ED/ES (:func:`fit_exam`, breath-hold correction) and then every frame
(:func:`fit_cycle`), and prints, per method (model, slices):

* the volume-curve error per frame against ``truth/volumes`` (RMS over all frames, ml, and the
  mean bias);
* the relative error of the function indices (peak ejection rate, E, A, E/A; time to peak
  filling and diastasis in ms) computed by :func:`function_indices` from the fitted and from the
  true volumes at the same frames (so the figure is the fit's error, not the sampling's);
* ED and ES frames of the fitted curve equal to the truth's;
* the per-frame fitting time per exam (CPU seconds on one thread, ED/ES fit excluded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.cine.lvmodel.cycle import WARM_ITERATIONS, fit_cycle  # noqa: E402
from cmr_atlas.cine.lvmodel.lax_shifts import fit_exam_lax_registered  # noqa: E402
from cmr_atlas.cine.lvmodel.through_plane import fit_exam_through_plane  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.cine.volume_curves import function_indices  # noqa: E402
from cmr_atlas.core.geometry import planes_by_slice  # noqa: E402

RATES = ("per_ml_s", "pfr_e_ml_s", "pfr_a_ml_s", "e_a_ratio")
TIMES = ("time_to_pfr_ms", "diastasis_ms")


def truth_cycle_guide_points(truth: dict[str, pd.DataFrame], observer: str = "truth") -> pd.DataFrame:
    """Cycle guide points (CYCLE_GUIDE_POINTS columns) of one exam from its truth tables."""
    c = truth["contours"][truth["contours"]["observer"] == observer]
    lm = truth["landmarks"][truth["landmarks"]["observer"] == observer]
    cols = ["exam_id", "phase", "frame", "view", "slice_index", "x_mm", "y_mm", "z_mm"]
    a = c[cols + ["surface", "point_index"]].assign(kind="contour", landmark=None)
    b = lm[cols + ["landmark"]].assign(kind="landmark", surface=None, point_index=0)
    gp = pd.concat([a, b], ignore_index=True).assign(source=observer, weight=1.0)
    times = dict(zip(truth["volumes"]["frame"], truth["volumes"]["time_ms"]))
    return gp.assign(time_ms=gp["frame"].map(times))


def truth_only(seed: int, index: int, observers: int = 0) -> dict[str, pd.DataFrame]:
    """The truth tables of exam ``index`` of the cohort ``seed``, as ``generate_exam`` makes them
    (same seed streams) but without rendering the images, which the truth does not need;
    ``observers``: also that many simulated observers' ED/ES contours (obs1, obs2, ...)."""
    from cmr_atlas.synth import anatomy as an
    from cmr_atlas.synth.dicom_writer import make_patient_header
    from cmr_atlas.synth.mesa import cohort
    from cmr_atlas.synth.mesa.scanner import plan_acquisition
    from cmr_atlas.synth.subjects import sample_subjects

    ss = np.random.SeedSequence([int(seed), int(index)])
    rng_subject, rng_heart, rng_scan, _, rng_obs, rng_hdr = (np.random.default_rng(s) for s in ss.spawn(6))
    subj = sample_subjects(rng_subject, 1, 0.0).iloc[0].to_dict()
    targets = {k[len("target_"):]: v for k, v in subj.items() if k.startswith("target_")}
    heart = an.make_heart(rng_heart, targets, subj["bsa_m2"], subj["height_cm"], subj["weight_kg"], subj["heart_rate"])
    vendor = "SIEMENS" if rng_scan.random() < 0.55 else "GE MEDICAL SYSTEMS"
    acq = plan_acquisition(rng_scan, heart, subj["heart_rate"], vendor)
    hdr = make_patient_header(rng_hdr, f"cmr-atlas-synth-{seed}-{index}", subj["age"], subj["sex"],
                              subj["height_cm"], subj["weight_kg"])
    ex = cohort.SyntheticExam(cohort.exam_label(seed, index), subj, heart, acq, hdr, images=None)
    return cohort._truth_tables(ex, rng_obs, observers)


def clinical_truth_only(seed: int, index: int) -> dict[str, pd.DataFrame]:
    """The cine truth of clinical exam ``index`` of the cohort ``seed`` (``synth.clinical``), as
    :func:`cmr_atlas.synth.clinical.cine.render` makes it (same seed stream, the draws before any
    image is rendered: timing, trabeculae, off-resonance, planes and breath-holds) without rendering
    the images: contours and landmarks of every frame, slices, breath-hold shifts, per-frame volumes."""
    import dataclasses

    from cmr_atlas.core.geometry import plane_to_row
    from cmr_atlas.synth import truth_rows as tr
    from cmr_atlas.synth.clinical import cine
    from cmr_atlas.synth.clinical import cohort as cc
    from cmr_atlas.synth.clinical import planetruth as pt
    from cmr_atlas.synth.clinical.render import phase_cached

    rngs = cc.exam_streams(seed, index)
    ctx = cc.make_context(seed, index, 0.0, rngs)
    ctx = dataclasses.replace(ctx, heart=phase_cached(ctx.heart))
    rng = rngs["cine"]
    tm = cine.draw_timing(rng, ctx)
    cine.draw_trabeculae(rng)
    cine.off_resonance_hz(rng, ctx)
    plans = cine.plan_planes(rng, ctx)
    phases = tm.phases()
    frames = [(f, float(w), phases.get(f)) for f, w in enumerate(tm.activation)]
    contours, marks = [], []
    for pp in plans:
        c, m = tr.plane_truth(ctx.label, ctx.heart, cine.SEQUENCE, pp.view, pp.sl, pp.plane, pp.shift_mm, frames)
        contours += c
        marks += m
    truth = pt.truth_frames(contours, marks, {(pp.view, pp.sl): pp.plane for pp in plans}, rng, 0)
    truth["volumes"] = tr.frame_volumes(ctx.label, ctx.heart, tm.activation, tm.trigger_ms, phases)
    truth["slices"] = pd.DataFrame([plane_to_row(ctx.label, pp.view, pp.sl, pp.plane) for pp in plans])
    truth["slice_shifts"] = pd.DataFrame([
        {"exam_id": ctx.label, "view": pp.view, "slice_index": pp.sl, "dx_mm": pp.shift_mm[0],
         "dy_mm": pp.shift_mm[1], "dz_mm": pp.shift_mm[2]} for pp in plans])
    truth["exams"] = pd.DataFrame([{"exam_id": ctx.label, "ed_frame": tm.ed_frame, "es_frame": tm.es_frame,
                                    "rr_ms": tm.rr_ms, "n_frames": len(tm.trigger_ms)}])
    truth["subjects"] = pd.DataFrame([{"exam_id": ctx.label, **{k: v for k, v in ctx.subject.items()
                                                                 if not k.startswith("target_")}}])
    return truth


def _cnn_cache_name(protocol: str, seed: int, index: int) -> str:
    return f"cnn_{seed}_{index}.pkl" if protocol == "legacy" else f"cnn_{protocol}_{seed}_{index}.pkl"


def _exam_images(protocol: str, seed: int, index: int):
    """``(truth, images, {view: sequence})`` of one exam: legacy GRE (``synth.mesa``) or the
    clinical bSSFP cine (:func:`cmr_atlas.cine.training.clinical_cine` for the images, rendered on
    the exam's own streams as :func:`clinical_truth_only`'s truth, MI fraction 0 as that)."""
    if protocol == "clinical":
        from cmr_atlas.cine.training import clinical_cine

        images, _ = clinical_cine(seed, index, 0.0)
        return clinical_truth_only(seed, index), images, {v: "cine_ssfp" for v in ("sax", *images.lax)}
    from cmr_atlas.synth.mesa import cohort

    ex = cohort.generate_exam(seed, index)
    return ex.truth, ex.images, None


def cnn_cycle_guide_points(seed: int, index: int, models, cache: Path | None = None, protocol: str = "legacy"):
    """The exam's truth, its automated cycle guide points (the shipped networks on its images:
    :func:`infer_exam`, config defaults, the series' sequence routing the segmentation, every
    frame's masks through :func:`cycle_guide_points`) and its images; ``cache``: a folder keeping
    them per exam (pickles) for reruns of the fits."""
    import pickle

    path = cache / _cnn_cache_name(protocol, seed, index) if cache is not None else None
    if path is not None and path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    from cmr_atlas.cine.autoguide import cycle_guide_points
    from cmr_atlas.cine.inference import infer_exam
    from cmr_atlas.core.config import default

    truth, images, sequences = _exam_images(protocol, seed, index)
    res = infer_exam(images, models, ed_method=default("segmentation.ed_frame"),
                     absent_threshold=default("landmarks.absent_threshold"), batch=default("inference.batch"),
                     sequences=sequences)
    out = truth, cycle_guide_points(images, res.masks, res.phases, res.landmarks, res.qc), images
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(out, fh)
    return out


def evaluate_exam(truth: dict[str, pd.DataFrame], observer: str, iterations: int,
                  cgp: pd.DataFrame | None = None, keep: list | None = None,
                  curves: list | None = None, images=None, label_as: str | None = None) -> list[dict]:
    """Fit ED/ES and every frame of one exam (its truth's guide points, or ``cgp``) and compare;
    ``curves``: gets a frame of the fitted and true volumes per method (``--dump``); ``images``:
    register the landmark-only LAX views on them (:func:`fit_exam_lax_registered`, the fit stage's
    automated path); ``label_as``: the rows' ``method`` prefix (the decomposition's layouts)."""
    from threadpoolctl import threadpool_limits

    label = str(truth["exams"]["exam_id"].iloc[0])
    cgp = truth_cycle_guide_points(truth, observer) if cgp is None else cgp
    planes = planes_by_slice(truth["slices"], label)
    src = str(cgp["source"].iloc[0])
    gp = cgp[cgp["phase"].isin(["ED", "ES"])]
    ed_cpu = np.nan
    if default("fit.through_plane"):  # as the fit stage: through-plane shifts from the crossings
        ed = fit_exam_through_plane(gp.drop(columns="time_ms"), cgp, planes, label, src,
                                    shift_reference=default("fit.shift_reference"))
    else:
        with threadpool_limits(limits=1):
            t0 = time.process_time()
            ed = fit_exam_lax_registered(gp, planes, images, label, src, breath_hold=True,
                                         shift_reference=default("fit.shift_reference"))
            ed_cpu = time.process_time() - t0
    with threadpool_limits(limits=1):
        t0 = time.process_time()
        cyc = fit_cycle(cgp, planes, ed, iterations=iterations, keep_surfaces=keep is not None)
        cpu = time.process_time() - t0
    vol = truth["volumes"].set_index("frame")
    true_v = vol["volume_ml"].reindex(cyc.frames).to_numpy()
    ref = function_indices(cyc.time_ms, true_v, cyc.frames)
    ex = truth["exams"].iloc[0]
    if keep is not None:
        keep.append((ed, cyc))
    rows = []
    for method, v in cyc.volumes.items():
        if curves is not None:
            curves.append(pd.DataFrame({"exam": label, "method": method, "frame": cyc.frames,
                                        "time_ms": cyc.time_ms, "volume_ml": v, "true_ml": true_v,
                                        "rr_ms": float(ex["rr_ms"]) if "rr_ms" in ex else np.nan}))
        got = function_indices(cyc.time_ms, v, cyc.frames)
        row = {"exam": label, "method": f"{label_as} {method}" if label_as else method,
               "n_frames": len(cyc.frames), "cpu_s": cpu, "ed_cpu_s": ed_cpu if images is not None else np.nan,
               "rms_ml": float(np.sqrt(np.mean((v - true_v) ** 2))), "bias_ml": float(np.mean(v - true_v)),
               "ed_exact": got["ed_frame"] == int(ex["ed_frame"]), "es_exact": got["es_frame"] == int(ex["es_frame"])}
        for k in RATES:
            ok = got[k] is not None and ref[k] is not None
            row[k] = 100.0 * (got[k] - ref[k]) / ref[k] if ok else np.nan
        for k in TIMES:
            ok = got[k] is not None and ref[k] is not None
            row[k] = got[k] - ref[k] if ok else np.nan
        row["true_" + "pfr_e_edv_s"] = ref["pfr_e_edv_s"]
        row["true_e_a"] = ref["e_a_ratio"]
        rows.append(row)
    return rows


def _summary(df: pd.DataFrame) -> None:
    print(f"{'method':8} {'n':>3} {'RMS ml':>7} {'bias ml':>8} {'ED ok':>6} {'ES ok':>6} "
          + " ".join(f"{k.replace('_ml_s', ''):>14}" for k in RATES) + " "
          + " ".join(f"{k:>16}" for k in TIMES))
    for m, g in df.groupby("method"):
        rms = float(np.sqrt(np.mean(g["rms_ml"] ** 2)))
        cells = []
        for k in RATES:
            x = g[k].dropna()
            cells.append(f"{x.mean():+5.1f}+-{x.std():4.1f}%({len(x):2d})" if len(x) else f"{'-':>14}")
        for k in TIMES:
            x = g[k].dropna()
            cells.append(f"{x.mean():+6.1f}+-{x.std():5.1f}ms" if len(x) else f"{'-':>16}")
        print(f"{m:8} {len(g):3d} {rms:7.2f} {g['bias_ml'].mean():+8.2f} {g['ed_exact'].mean():6.2f} "
              f"{g['es_exact'].mean():6.2f} " + " ".join(cells))
    print("rates: mean +- SD of the % error (n exams with the feature); times: mean +- SD error in ms")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-exams", type=int, default=16)
    ap.add_argument("--seed", type=int, default=40001, help="held-out cohort seed (never a training seed)")
    ap.add_argument("--observer", default="truth")
    ap.add_argument("--protocol", default="legacy", choices=["legacy", "clinical"],
                    help="legacy GRE exams (synth.mesa) or clinical bSSFP exams (synth.clinical; with --cnn "
                         "the bSSFP cine segmented by the network routed to cine_ssfp)")
    ap.add_argument("--iterations", type=int, default=WARM_ITERATIONS, help="warm-start steps per frame")
    ap.add_argument("--cnn", action="store_true",
                    help="the automated path: the shipped networks' masks and landmarks (CPU, slow)")
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, help="--cnn: keep each exam's truth, automated guide points and images "
                                               "here (pickles) and reuse them (the fits rerun, not the networks)")
    ap.add_argument("--no-lax-registration", action="store_true",
                    help="--cnn: leave the landmark-only LAX views unregistered (the fit stage before 2026-12-02)")
    ap.add_argument("--decompose", action="store_true",
                    help="--cnn: also fit the truth's contours of every exam, SAX only (the automated layout) and "
                         "with the LAX contours: rows 'truth-SAX <method>' and 'truth-all <method>'")
    ap.add_argument("--dump", type=Path, help="write every exam's fitted and true volume curves (parquet)")
    ap.add_argument("--atlas", action="store_true",
                    help="also build the ED+ES and motion atlases of the cohort and print the risk-factor "
                         "AUC table (motion modes beside ED+ES modes; use >= 100 exams)")
    ap.add_argument("--all", action="store_true",
                    help="every figure of issue #17 in one run: the legacy automated path (--seed, --cnn "
                         "--decompose), the clinical cohort on truth contours (--clinical-seed), the "
                         "through-plane shifts (--tp-seed), speed; the AUC table needs --atlas on >= 100 exams")
    ap.add_argument("--clinical-seed", type=int, default=70001, help="--all: the held-out clinical cohort")
    ap.add_argument("--tp-seed", type=int, default=40001, help="--all: the through-plane cohort (truth contours)")
    return ap


def run_cohort(args, cnn: bool, protocol: str, seed: int, models=None) -> tuple[pd.DataFrame, list, list]:
    """Rows of every exam of one cohort (:func:`evaluate_exam`), the fits kept for ``--atlas`` and
    the subjects."""
    rows, keep, subjects = [], [] if args.atlas else None, []
    curves = [] if args.dump else None
    for i in range(args.n_exams):
        if cnn:
            truth, cgp, images = cnn_cycle_guide_points(seed, i, models, args.cache, protocol)
            rows += evaluate_exam(truth, "auto", args.iterations, cgp, keep, curves,
                                  images=None if args.no_lax_registration else images)
            if args.decompose:  # the same estimator on the truth's contours: SAX only (the automated
                # layout, with the truth's landmarks), and with the LAX contours too
                tg = truth_cycle_guide_points(truth)
                sax_only = tg[(tg["kind"] == "landmark") | (tg["view"] == "sax")]
                rows += evaluate_exam(truth, "truth", args.iterations, sax_only,
                                      images=None if args.no_lax_registration else images,
                                      label_as="truth-SAX")
                rows += evaluate_exam(truth, "truth", args.iterations, label_as="truth-all")
        else:
            truth = (clinical_truth_only if protocol == "clinical" else truth_only)(seed, i)
            rows += evaluate_exam(truth, args.observer, args.iterations, keep=keep, curves=curves)
        subjects.append(truth["subjects"])
        print(f"exam {i + 1}/{args.n_exams}", file=sys.stderr)
    if curves:
        pd.concat(curves, ignore_index=True).to_parquet(args.dump)
    return pd.DataFrame(rows), keep, subjects


def print_cohort(df: pd.DataFrame, args, cnn: bool, protocol: str, seed: int) -> None:
    what = "automated (shipped CNNs, every frame's masks)" if cnn else f"observer {args.observer} (every frame)"
    reg = "" if not cnn else (", LAX views unregistered" if args.no_lax_registration else ", LAX views registered")
    print(f"Held-out {protocol} cohort: seed {seed}, {args.n_exams} exams, {what}{reg}, "
          f"{args.iterations} warm-start steps per frame")
    _summary(df)
    model = df[df["method"] == "model"]
    print(f"per-frame fitting: {model['cpu_s'].mean():.2f} s CPU per exam (max {model['cpu_s'].max():.2f}), "
          f"{model['n_frames'].mean():.1f} frames, {1000 * (model['cpu_s'] / model['n_frames']).mean():.0f} ms "
          "per frame, one thread")
    if cnn and not args.no_lax_registration:
        print(f"ED/ES fit with the LAX registration: {model['ed_cpu_s'].mean():.2f} s CPU per exam")
    print(f"true E: {df['true_pfr_e_edv_s'].mean():.2f} EDV/s, true E/A {df['true_e_a'].mean():.2f} (frame-sampled)")


def print_through_plane(seed: int, n: int) -> None:
    """Through-plane shift error and volume bias without and with the crossings' estimate
    (benchmarks/fit_accuracy.py on the legacy cohort's truth contours)."""
    from fit_accuracy import evaluate, legacy_cases

    cases = legacy_cases(seed, n)
    ref = default("fit.shift_reference")
    print(f"Through-plane shifts: legacy cohort seed {seed}, {len(cases)} exams, truth contours")
    for name, crossings in (("not estimated", None), ("crossings, every frame", "cycle")):
        r = evaluate(cases, True, ref, None, crossings)
        print(f"  {name:<24} error RMS {r['tp_err']:.2f} mm (true {r['tp_true']:.2f}); EDV bias {r['edv'][0]:+.2f} "
              f"+- {r['edv'][1]:.2f} %, ESV bias {r['esv'][0]:+.2f} +- {r['esv'][1]:.2f} %, mass bias "
              f"{r['mass'][0]:+.2f} +- {r['mass'][1]:.2f} %")


def _load_models(args):
    import torch

    from cmr_atlas.cine.inference import load_models

    torch.set_num_threads(args.threads)
    return load_models(args.models_dir, method=default("landmarks.method"), device="cpu",
                       precision=default("inference.precision"))


def main() -> int:
    ap = _parser()
    args = ap.parse_args()
    cnn = args.cnn or args.all
    args.decompose = args.decompose or args.all
    protocol = "legacy" if args.all else args.protocol
    cached = args.cache and all((args.cache / _cnn_cache_name(protocol, args.seed, i)).exists()
                                for i in range(args.n_exams))
    models = _load_models(args) if cnn and not cached else None
    df, keep, subjects = run_cohort(args, cnn, protocol, args.seed, models)
    print_cohort(df, args, cnn, protocol, args.seed)
    if keep:
        print_motion_auc(keep, pd.concat(subjects, ignore_index=True))
    if args.all:
        args.decompose, args.dump = False, None
        print()
        clin, _, _ = run_cohort(args, False, "clinical", args.clinical_seed)
        print_cohort(clin, args, False, "clinical", args.clinical_seed)
        print("(the clinical automated path: --protocol clinical --cnn; manual sources are ED/ES only)")
        print()
        print_through_plane(args.tp_seed, args.n_exams)
        print("\nRisk-factor AUC table, motion vs ED+ES modes: --atlas on >= 100 exams (docs/motion.md)")
    return 0


def print_motion_auc(fits: list, subjects: pd.DataFrame, n_pcs: int = 20) -> None:
    """ED+ES atlas and motion atlas of the fitted exams, and the risk-factor AUC table."""
    from cmr_atlas.cine.atlas import build_atlases, scores_frame
    from cmr_atlas.cine.lvmodel.outputs import tables_from_cycles, tables_from_fits
    from cmr_atlas.cine.motion import build_motion_atlas, motion_tables
    from cmr_atlas.core.config import default
    from cmr_atlas.stats.motion_modes import motion_auc

    eds = [e for e, _ in fits]
    shapes = tables_from_fits(eds)["shapes"].assign(source="auto")
    ms = tables_from_cycles([c for _, c in fits])["motion_shapes"].assign(source="auto")
    edes = build_atlases(shapes, n_components=n_pcs, scaling=False, sources=("auto",)).atlases["auto"]
    motion = build_motion_atlas(ms, "auto", n_components=n_pcs, exam_ids=edes.exam_ids)
    t = motion_auc(scores_frame(edes), motion_tables(motion)[0], subjects, list(default("stats.risk_factors")),
                   n_pcs=n_pcs, folds=default("stats.folds"), n_bootstrap=200, seed=0)
    print(f"\nRisk-factor AUC, {len(motion.exam_ids)} exams, {n_pcs} modes each (motion modes: "
          f"{100 * motion.variance_ratio[:n_pcs].sum():.0f} % of trajectory variance; ED+ES: "
          f"{100 * edes.variance_ratio[:n_pcs].sum():.0f} %)")
    print(t[["risk_factor", "modes", "k", "auc", "ci_low", "ci_high", "n", "n_positive", "p_vs_ed_es"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    raise SystemExit(main())
