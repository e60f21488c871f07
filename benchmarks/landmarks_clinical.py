"""Landmarks and SAX segmentation on the bSSFP cine of held-out synthetic clinical exams (issue 16;
Xue et al. 2021 Tables 2-4).

    PYTHONPATH=. python benchmarks/landmarks_clinical.py --n-exams 40 --seed 930001 \
        [--models-dir resources/models] [--keep-exams DIR] [--threads 2]

Test cohort: clinical exams of seed 930001 (exams 0..n-1, two simulated observers, MI fraction
0.2), only their cine rendered (:func:`cmr_atlas.cine.training.clinical_cine`: the same images as
the full exam's cine).  Disjoint from the training seeds (clinical 920000, legacy 910000-910001),
the test-suite's clinical cohort (86) and the legacy test cohort (30001).  Printed:

* detection rate per view (all the image's landmarks detected, as the paper's success rate) and
  per landmark, with false positives on SAX slices without the landmark;
* distance in mm to each observer and to the truth per landmark, beside observer vs observer;
* RV insertion angle and LV length: bias and 95 % limits of agreement vs each observer;
* Dice at the true ED/ES frames, EDV/ESV/EF/mass by slice summation vs truth, ED/ES frames
  (the legacy accuracy benchmark's tables, :mod:`benchmarks.accuracy`);
* speed: seconds per cine series (a LAX cine's landmarks on every frame; a SAX stack's
  segmentation of every image + landmarks at ED/ES) on ``--threads`` CPU threads;
* the SAX segmentation by the network inference routes the cohort's sequence to
  (``Models.seg_for``: ``seg_sax_ssfp`` for bSSFP where the models folder has it, ``seg_sax`` for GRE);
* the legacy guard (``--legacy-n-exams``, default 12 GRE exams of the legacy test seed 30001, as
  ``benchmarks/accuracy.py``): the same figures on legacy GRE cine, and a summary per view and
  sequence; with ``--baseline-models DIR`` each summary figure beside that models folder's (before
  / after) and whether it is unchanged or better.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import (GOAL_CINE_MM, _dice, evaluate_exam, generated, landmark_records, measures,  # noqa: E402
                      paired_differences, print_derived, print_tables, truth_masks)
from cmr_atlas.core.vocab import CAVITY, MYO  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.geometry import SlicePlane  # noqa: E402
from cmr_atlas.core.imagecache import load_exam_images, save_exam_images  # noqa: E402
from cmr_atlas.cine.inference import cavity_centres, detect_landmarks, load_models, segment_exam  # noqa: E402
from cmr_atlas.cine.training import clinical_cine  # noqa: E402

TRUTH_USED = ("exams", "contours", "landmarks")
SEQUENCE = "cine_ssfp"


def _load_3ch(images, path: Path):
    """Folders kept before the image cache held the 3CH cine have it in a file beside the cache."""
    with np.load(path) as z:
        images.lax["lax_3ch"] = z["cine"]
        images.lax_planes["lax_3ch"] = SlicePlane(z["position_mm"], z["row_cosine"], z["col_cosine"],
                                                  tuple(map(float, z["pixel_spacing_mm"])),
                                                  tuple(map(int, z["shape"])), float(z["thickness_mm"]))
    return images


def clinical_exams(n: int, seed: int, observers: int, mi_fraction: float, keep: Path | None):
    """Held-out clinical cine exams; with ``keep`` stored there the first time and reused."""
    for i in range(n):
        stem = None if keep is None else keep / f"{seed}-{i:04d}"
        if stem is not None and stem.with_suffix(".npz").is_file():
            images = load_exam_images(stem.with_suffix(".npz"))
            three = Path(f"{stem}.lax_3ch.npz")
            if "lax_3ch" not in images.lax and three.is_file():
                images = _load_3ch(images, three)
            yield images, {t: pd.read_parquet(f"{stem}.{t}.parquet") for t in TRUTH_USED}
            continue
        images, truth = clinical_cine(seed, i, mi_fraction, observers)
        if stem is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for t in TRUTH_USED:
                truth[t].to_parquet(f"{stem}.{t}.parquet")
            save_exam_images(images, stem.with_suffix(".npz"))  # with the 3CH cine
        yield images, truth


def detection_by_view(rec: dict, sequence: str = SEQUENCE) -> None:
    """The paper's success rate: images whose landmarks (all those the truth has) were all detected."""
    lm = pd.DataFrame(rec["landmarks"])
    lm = lm[lm["truth_present"]]
    if not len(lm):
        return
    print(f"\nDetection rate per view and sequence ({sequence}): images with every present landmark detected")
    for (method, view), g in lm.groupby(["method", "view"], sort=False):
        per_image = g.groupby(["exam_id", "slice", "frame"])["auto_present"].all()
        print(f"  {method:8s} {view:8s} {per_image.mean() * 100:6.1f} % of {len(per_image)} images")


# summary figure -> True where higher is better (else lower; biases compare by magnitude)
HIGHER_BETTER = {"detected_pct": True, "false_pos_pct": False, "auto_obs1_mm": False, "auto_obs2_mm": False,
                 "dice_myo_ed": True, "dice_myo_es": True, "dice_cav_ed": True, "dice_cav_es": True,
                 "edv_bias_ml": False, "edv_sd_ml": False, "esv_bias_ml": False, "esv_sd_ml": False,
                 "mass_bias_g": False, "mass_sd_g": False, "angle_obs1_loa_deg": False, "angle_truth_loa_deg": False}


def summary(rec: dict) -> dict[tuple[str, str], float]:
    """``{(view, figure): value}``: per view the image detection rate, the false-positive rate
    (where the truth has absent landmarks), mean distance to each observer and (SAX) the half-width
    of the RV insertion angle's limits of agreement with observer 1 and the truth; per cohort (view ``sax``) the mean Dice and the EDV/ESV/mass bias and SD vs truth."""
    out: dict[tuple[str, str], float] = {}
    lm = pd.DataFrame(rec["landmarks"])
    for view, g in (lm[lm["truth_present"]].groupby("view", sort=False) if len(lm) else ()):
        out[view, "detected_pct"] = 100 * float(g.groupby(["exam_id", "slice", "frame"])["auto_present"].all().mean())
        out[view, "auto_obs1_mm"] = float(g["auto_obs1"].mean())
        out[view, "auto_obs2_mm"] = float(g["auto_obs2"].mean())
        absent = lm[(lm["view"] == view) & ~lm["truth_present"]]["auto_present"]
        if len(absent):  # SAX: a landmark reported on an image the truth has none on
            out[view, "false_pos_pct"] = 100 * float(absent.mean())
    dv = pd.DataFrame(rec.get("derived", []))
    angles = dv[dv["measure"] == "rv_insert_angle_deg"] if len(dv) else dv
    for view, g in (angles.groupby("view") if len(angles) else ()):
        for ref in ("obs1", "truth"):  # half-width of the 95 % limits of agreement (a rotated network widens it)
            diff = paired_differences(g, "auto", ref, "rv_insert_angle_deg")
            if len(diff) > 1:
                out[view, f"angle_{ref}_loa_deg"] = 1.96 * float(diff.std(ddof=1))
    dice = pd.DataFrame(rec["dice"])
    for (mask, phase), g in (dice.groupby(["mask", "phase"]) if len(dice) else ()):
        out["sax", f"dice_{mask[:3]}_{phase.lower()}"] = float(g["dice"].mean())
    me = pd.DataFrame(rec["measures"])
    for m, key in (("edv_ml", "edv"), ("esv_ml", "esv"), ("lv_mass_g", "mass")):
        d = (me[me["measure"] == m]["auto"] - me[me["measure"] == m]["truth"]).dropna() if len(me) else pd.Series()
        unit = "g" if key == "mass" else "ml"
        if len(d) > 1:
            out["sax", f"{key}_bias_{unit}"], out["sax", f"{key}_sd_{unit}"] = float(d.mean()), float(d.std(ddof=1))
    return out


def not_worse(figure: str, after: float, before: float, tol: float = 0.0) -> bool:
    if not (np.isfinite(after) and np.isfinite(before)):
        return False
    if HIGHER_BETTER.get(figure, False):
        return after >= before - tol
    return abs(after) <= abs(before) + tol


def print_summary(results: dict[str, dict], baseline: dict[str, dict] | None) -> None:
    """Summary per sequence and view; with ``baseline`` (same keys) before / after and whether the
    figure is unchanged or better."""
    print("\nSummary per sequence and view" + (" (baseline -> these models; ok = unchanged or better)"
                                              if baseline else ""))
    for sequence, fig in results.items():
        for (view, name), v in fig.items():
            if baseline is None:
                print(f"  {sequence:10s} {view:8s} {name:14s} {v:9.3f}")
                continue
            b = baseline[sequence].get((view, name), np.nan)
            print(f"  {sequence:10s} {view:8s} {name:14s} {b:9.3f} -> {v:9.3f}  "
                  f"{'ok' if not_worse(name, v, b) else 'WORSE'}")


def evaluate_at_true_phases(images, truth: dict, models, sequence: str = SEQUENCE) -> dict[str, list[dict]]:
    """:func:`accuracy.evaluate_exam` at the true ED/ES frames only: SAX segmentation of those two
    frames (Dice; EDV/ESV/mass at the true frames, so no phase detection), landmarks on the
    annotated LAX frames and on SAX at ED/ES (the same landmark figures as the full evaluation).
    A tenth of the cost, for a machine shared by many jobs."""
    ex = truth["exams"].iloc[0]
    ed, es = int(ex["ed_frame"]), int(ex["es_frame"])
    two = type(images)(images.exam_id, images.sax[:, [ed, es]], images.sax_planes, images.trigger_times_ms[[ed, es]])
    masks, qc = segment_exam(two, models, batch=default("inference.batch"))
    out: dict[str, list[dict]] = {"dice": [], "measures": [], "landmarks": [], "phases": [], "derived": []}
    tm = truth_masks(images, truth["contours"], [ed, es])
    stack = np.zeros_like(masks)
    for (s, f), t in tm.items():
        stack[s, int(f == es)] = t
        px_mm2 = float(np.prod(images.sax_planes[s].pixel_spacing_mm))
        for name, lab in (("cavity", CAVITY), ("myocardium", MYO)):
            if (t == lab).any():
                out["dice"].append({"phase": "ED" if f == ed else "ES", "mask": name,
                                    "dice": _dice(masks[s, int(f == es)] == lab, t == lab),
                                    "true_mm2": float((t == lab).sum()) * px_mm2})
    auto, ref = measures(two, masks, 0, 1), measures(two, stack, 0, 1)
    out["measures"] = [{"measure": k, "truth": float(ex[k]), "auto": auto[k], "truth_masks": ref[k]} for k in auto]
    # LAX: only the frames the observers annotated (the compared ones), mapped back to cine frames
    lt = truth["landmarks"]
    keep = {v: sorted(set(lt[(lt["view"] == v) & (lt["observer"] != "truth")]["frame"])) for v in images.lax}
    sub = type(images)(images.exam_id, images.sax, images.sax_planes, images.trigger_times_ms,
                       {v: c[keep[v]] for v, c in images.lax.items() if keep[v]}, images.lax_planes)
    frames = sorted({ed, es})
    order = [0 if f == ed else 1 for f in frames]  # masks and qc are [ED, ES]
    flags = qc.set_index(["slice_index", "frame"])["flag"]
    has_lv = np.array([[flags.get((s, i), "empty") == "" for i in order] for s in range(images.n_slices)])
    centres = cavity_centres(masks[:, order], has_lv) if default("landmarks.lv_centre_from_mask") else None
    lm = detect_landmarks(sub, models, frames, absent_threshold=default("landmarks.absent_threshold"),
                          batch=default("inference.batch"), sequences={v: sequence for v in ("sax", *sub.lax)},
                          sax_lv_centres=centres)
    lax = lm["view"] != "sax"
    lm.loc[lax, "frame"] = [keep[v][f] for v, f in zip(lm.loc[lax, "view"], lm.loc[lax, "frame"])]
    out["landmarks"], out["derived"] = landmark_records(images, truth["landmarks"], lm, "heatmap", ed, es)
    return out


def for_sequence(models, sequence: str):
    """``models`` with the segmentation network inference routes series of ``sequence`` to
    (``Models.seg_for``) as the one for every exam: each cohort here is one sequence."""
    seg, card = models.seg_for(sequence)
    print(f"{sequence}: segmentation by {card.get('name', '?')} (sha256 {str(card.get('sha256'))[:12]})",
          file=sys.stderr)
    for k in models.lm_routes:  # landmark networks: detect_landmarks routes them by the series' sequence
        lm_card = models.landmark_for(k, sequence)[1]
        print(f"{sequence}: {k} landmarks by {lm_card.get('name', '?')} (sha256 {str(lm_card.get('sha256'))[:12]})",
              file=sys.stderr)
    return dataclasses.replace(models, seg=seg, seg_card=card, seg_routes=None, seg_nets={})


TIP_MM2 = 100.0  # true label area below which a slice only grazes the LV (apical tip, base): 1 cm2


def print_dice_without_tips(rec: dict) -> None:
    """Mean Dice without the slices whose true label covers under :data:`TIP_MM2` (a few pixels of
    partial volume at the apical tip or the base, where one pixel decides between Dice 0 and 1),
    beside the mean of every slice; ``--true-phases`` only (the records carry the true areas)."""
    dice = pd.DataFrame(rec["dice"])
    if "true_mm2" not in dice:
        return
    print(f"\nDice mean without slices whose true label is under {TIP_MM2:.0f} mm2 (every slice -> without; n left out)")
    for (mask, phase), g in dice.groupby(["mask", "phase"]):
        big = g["true_mm2"] >= TIP_MM2
        print(f"  {mask:11s} {phase}  {g['dice'].mean():.3f} -> {g.loc[big, 'dice'].mean():.3f}  ({(~big).sum()} of {len(g)})")


def evaluate(exams, models, label: str, fast: bool = False) -> tuple[dict, object]:
    """Every exam of ``exams`` (all of sequence ``label``) evaluated with ``models`` (``fast``:
    :func:`evaluate_at_true_phases`), segmented by the network routed to that sequence: the
    records and the first exam's images."""
    sequence = label.removeprefix("baseline ")
    models = for_sequence(models, sequence)
    rec: dict[str, list[dict]] = {"dice": [], "measures": [], "landmarks": [], "phases": [], "derived": []}
    first = None
    for n, (images, truth) in enumerate(exams, 1):
        first = first or images
        r = (evaluate_at_true_phases(images, truth, models, sequence) if fast else
             evaluate_exam(images, truth, {"heatmap": models}, default("landmarks.absent_threshold"),
                           sequence=sequence))
        for k in rec:
            rec[k] += r[k]
        print(f"{label}: evaluated {n} exams", file=sys.stderr)
    return rec, first


def speed(images, models, threads: int, repeats: int = 3) -> None:
    """Seconds per cine series: each LAX cine's landmarks on every frame; the SAX stack's segmentation
    of every image and its landmarks at two frames (best of ``repeats``)."""
    import torch

    torch.set_num_threads(threads)
    batch = default("inference.batch")
    thr = default("landmarks.absent_threshold")
    lax_only = type(images)(images.exam_id, images.sax[:0], [], images.trigger_times_ms, images.lax, images.lax_planes)
    sax_only = type(images)(images.exam_id, images.sax, images.sax_planes, images.trigger_times_ms)

    def best(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_lax = best(lambda: detect_landmarks(lax_only, models, [], absent_threshold=thr, batch=batch))
    t_seg = best(lambda: segment_exam(sax_only, models, batch=batch))
    t_sax = best(lambda: detect_landmarks(sax_only, models, [0, images.n_frames // 3], absent_threshold=thr,
                                          batch=batch))
    n_lax = len(images.lax)
    print(f"\nSpeed on {threads} CPU threads ({'float32' if models.dtype is None else models.dtype}): "
          f"LAX cine landmarks {t_lax / n_lax:.2f} s per series ({images.n_frames} frames, "
          f"{n_lax} series); SAX stack ({images.n_slices} x {images.n_frames} images) segmentation "
          f"{t_seg:.2f} s + landmarks at ED/ES {t_sax:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-exams", type=int, default=40, help="held-out bSSFP exams (0: only the legacy guard)")
    ap.add_argument("--seed", type=int, default=930001, help="held-out clinical cohort seed")
    ap.add_argument("--mi-fraction", type=float, default=0.2)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default=default("inference.precision"), choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--keep-exams", help="folder to store the generated test exams in (and reuse them from)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed figure, on the cohort's first exam (for a quiet machine)")
    ap.add_argument("--out", default="benchmarks/out/landmarks_clinical", help="folder for the Bland-Altman PNGs")
    ap.add_argument("--legacy-n-exams", type=int, default=12, help="legacy GRE guard exams (0: none)")
    ap.add_argument("--legacy-seed", type=int, default=30001, help="legacy test cohort seed (benchmarks/accuracy.py)")
    ap.add_argument("--legacy-keep", help="folder of kept legacy test exams (benchmarks/accuracy.py --keep-exams)")
    ap.add_argument("--baseline-models", help="models folder to compare with (before / after), e.g. the shipped one")
    ap.add_argument("--true-phases", action="store_true",
                    help="segment only the true ED/ES frames (measures at those frames, no phase detection): "
                         "a tenth of the cost")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    keep = Path(args.keep_exams) if args.keep_exams else None
    exams = clinical_exams(args.n_exams, args.seed, 2, args.mi_fraction, keep)
    if args.generate_only:
        for i, _ in enumerate(exams):
            print(f"generated {i + 1}/{args.n_exams}", file=sys.stderr)
        return 0
    if args.speed_only:
        models = load_models(args.models_dir, method="heatmap", device="cpu", precision=args.precision)
        speed(next(iter(exams))[0], for_sequence(models, SEQUENCE), args.threads)
        return 0
    # --n-exams 0: the legacy guard alone
    cohorts = {SEQUENCE: lambda: clinical_exams(args.n_exams, args.seed, 2, args.mi_fraction, keep)} if args.n_exams else {}
    if args.legacy_n_exams:
        legacy_keep = Path(args.legacy_keep) if args.legacy_keep else None
        cohorts["cine_gre"] = lambda: generated(args.legacy_n_exams, args.legacy_seed, 2, args.mi_fraction, legacy_keep)
    models = load_models(args.models_dir, method="heatmap", device="cpu", precision=args.precision)
    results, first = {}, None
    for sequence, make in cohorts.items():
        rec, images = evaluate(make(), models, sequence, args.true_phases)
        first = first or images
        cohort = (f"held-out clinical cohort, bSSFP cine (seed {args.seed})" if sequence == SEQUENCE else
                  f"legacy guard, GRE cine (seed {args.legacy_seed})")
        n = len({r["exam_id"] for r in rec["landmarks"]})
        seg = models.seg_for(sequence)[1].get("name")
        print(f"\n===== {cohort}: {n} exams; models {args.models_dir} (segmentation: {seg})"
              + (" (segmentation and measures at the true ED/ES frames)" if args.true_phases else ""))
        detection_by_view(rec, sequence)
        print_tables(rec, Path(args.out) / sequence, goal_mm=GOAL_CINE_MM)
        print_dice_without_tips(rec)
        print_derived(rec)
        results[sequence] = summary(rec)
    baseline = None
    if args.baseline_models:
        base = load_models(args.baseline_models, method="heatmap", device="cpu", precision=args.precision)
        baseline = {q: summary(evaluate(make(), base, f"baseline {q}", args.true_phases)[0])
                    for q, make in cohorts.items()}
    print_summary(results, baseline)
    if first is not None and not args.true_phases:
        speed(first, for_sequence(models, SEQUENCE), args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
