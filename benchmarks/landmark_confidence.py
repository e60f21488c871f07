"""Every landmark's heatmap peak probability on held-out (or validation) exams, beside the truth:
what decides detection and false positives, before any threshold is applied (issue 16).

    PYTHONPATH=. python benchmarks/landmark_confidence.py --cohort clinical --n-exams 40 --seed 930001 \
        --keep-exams DIR --out records.parquet [--models-dir resources/models] [--threads 1]
    PYTHONPATH=. python benchmarks/landmark_confidence.py --cohort legacy --n-exams 12 --seed 30001 \
        --keep-exams DIR --out legacy.parquet

The images and frames are those of ``landmarks_clinical.py --true-phases`` (LAX: the observers'
annotated frames; SAX: every slice at the true ED/ES frames).  Landmarks are decoded with
threshold 0 (every landmark found), so ``confidence`` is the peak probability and the distances are
those of the point the decoder would give at any threshold at or below it.  One row per image and
landmark (:func:`accuracy.landmark_records`) plus ``sequence``, ``n_slices`` and, on SAX, the
image's ``slice_from_apex`` / ``slice_from_base`` counted among the slices the truth has any
landmark on (0 = the most apical / basal such slice; -1 beyond them), ``end_slice`` (the image
is the first or last slice of that landmark's own extent in the truth) and the truth's endo/epi
areas.  Printed (:func:`print_misses`): at the config's ``landmarks.absent_threshold``, per view
and landmark the present landmarks missed, their peak probabilities in bins, how many lie on an
end slice, the detection on end and inner slices, and the false-positive rate.  Each SAX row also
has ``depths_present`` of ``n_depths``: at how many of the depths the renderer averages (clinical:
centre and +-1/3 of the thickness; legacy: +-2 mm) the truth has the landmark
(:mod:`cmr_atlas.synth.slab`); the SAX detection is then also printed for images whose landmarks
agree at every depth and for boundary images (:func:`accuracy.boundary_table`).  Clinical
rows have ``breathing_mm`` (:func:`with_breathing`: a long-axis row its view's cine's, a SAX row
its slice's): how far the anatomy moved while the cine was acquired
(:func:`cmr_atlas.synth.slab.cine_breathing_mm`; 0: breath held) and the anatomy's in-plane shift
during it (``mean_shift_*_mm``, ``lowfreq_shift_*_mm``); the distances are printed for
the two kinds of cine (:func:`print_breathing`: long axis per view, SAX per landmark), and on the
breathing ones how much of the network's error follows that shift (:func:`print_breathing_shift`).  Last, per view
at that threshold, images detected and distances with 95 % intervals over exams
(:func:`accuracy.view_distance_cis`).  ``--neighbour-frames K``
decodes the SAX networks with K cine frames on each side instead of their cards'
(``decode.neighbour_frames``, ``cmr-atlas models neighbours``; 0: each image alone),
``--lax-neighbour-frames K`` the long-axis networks (then the whole long-axis cines go in and the
annotated frames are decoded); ``--zooms``
adds the long-axis networks' unrotated magnified looks (``decode.zooms``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import add_depth_presence, boundary_table, generated, landmark_records, print_view_cis  # noqa: E402
from landmarks_clinical import clinical_exams  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.cine.inference import detect_landmarks, load_models  # noqa: E402
from cmr_atlas.cine.training_data import truth_slice_map  # noqa: E402
from cmr_atlas.nets.heatmaps import card_neighbour_frames  # noqa: E402
from cmr_atlas.synth.slab import cine_breathing_mm, sax_presence_by_depth  # noqa: E402

SEQUENCE_OF = {"clinical": "cine_ssfp", "legacy": "cine_gre"}


def without_calibrated_thresholds(models) -> list[dict]:
    """The cards of every landmark network of ``models`` (those routed by sequence too), each once,
    with its calibrated absent thresholds taken out of ``decode``, so every landmark decodes at the
    threshold the caller gives (0 here: every landmark found)."""
    cards = list({id(c): c for _, c in [*models.landmark.values(), *models.lm_nets.values()]}.values())
    for card in cards:
        card["decode"] = {k: v for k, v in (card.get("decode") or {}).items() if k != "absent_threshold"}
    return cards


def exam_records(images, truth: dict, models, sequence: str) -> list[dict]:
    """Rows of one exam at threshold 0 (see the module's docstring)."""
    ex = truth["exams"].iloc[0]
    ed, es = int(ex["ed_frame"]), int(ex["es_frame"])
    lt = truth["landmarks"]
    keep = {v: sorted(set(lt[(lt["view"] == v) & (lt["observer"] != "truth")]["frame"])) for v in images.lax}
    # only the annotated frames go in, unless a long-axis card averages neighbouring frames (the whole cines)
    whole = any(card_neighbour_frames(c) for _, c in [*models.landmark.values(), *models.lm_nets.values()]
                if "sax" not in c.get("views", ["sax"]))
    sub = type(images)(images.exam_id, images.sax, images.sax_planes, images.trigger_times_ms,
                       {v: c if whole else c[keep[v]] for v, c in images.lax.items() if keep[v]}, images.lax_planes)
    lm = detect_landmarks(sub, models, sorted({ed, es}), absent_threshold=0.0, batch=default("inference.batch"),
                          sequences={v: sequence for v in ("sax", *images.lax)})
    lax = lm["view"] != "sax"
    if whole:
        lm = lm[~lax | np.array([f in keep.get(v, ()) for v, f in zip(lm["view"], lm["frame"])])]
    else:
        lm.loc[lax, "frame"] = [keep[v][f] for v, f in zip(lm.loc[lax, "view"], lm.loc[lax, "frame"])]
    rows, _ = landmark_records(images, lt, lm, "heatmap", ed, es)
    df = pd.DataFrame(rows).assign(sequence=sequence, n_slices=images.n_slices)
    sax = df["view"] == "sax"
    with_truth = sorted(df.loc[sax & df["truth_present"], "slice"].unique())
    # slices ordered base -> apex or apex -> base: whichever end is nearer the truth's apex
    order = {s: i for i, s in enumerate(with_truth)}
    n = len(with_truth)
    pos = df.loc[sax, "slice"].map(order)
    apex_first = _apex_first(images, lt, with_truth)
    df.loc[sax, "slice_from_apex"] = (pos if apex_first else n - 1 - pos).fillna(-1)
    df.loc[sax, "slice_from_base"] = (n - 1 - pos if apex_first else pos).fillna(-1)
    df["end_slice"] = False
    for (_, name), g in df[sax & df["truth_present"]].groupby(["frame", "landmark"]):
        ends = {g["slice"].min(), g["slice"].max()}
        df.loc[g.index, "end_slice"] = g["slice"].isin(ends)
    area = true_areas_mm2(images, truth["contours"])
    for surface in ("endo", "epi"):
        df.loc[sax, f"true_{surface}_mm2"] = [area.get((s, f, surface), 0.0)
                                             for s, f in zip(df.loc[sax, "slice"], df.loc[sax, "frame"])]
    return df.to_dict("records")


def true_areas_mm2(images, contours: pd.DataFrame) -> dict[tuple[int, int, str], float]:
    """``{(image slice, frame, surface): area in mm2}`` of the truth's SAX endo/epi contours (the
    cut of the plane through the slice's centre)."""
    c = contours[(contours["view"] == "sax") & (contours["observer"] == "truth")]
    to_image = {t: j for j, t in truth_slice_map(c, images.sax_planes).items()}
    out = {}
    for (ts, f, surface), g in c.groupby(["slice_index", "frame", "surface"]):
        if ts in to_image and surface in ("endo", "epi"):
            uv = images.sax_planes[to_image[ts]].in_plane_mm(g.sort_values("point_index")[["x_mm", "y_mm", "z_mm"]].to_numpy(float))
            x, y = uv[:, 0], uv[:, 1]
            out[to_image[ts], int(f), surface] = 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
    return out


def _apex_first(images, truth_lm: pd.DataFrame, slices: list[int]) -> bool:
    """Whether the first of ``slices`` is the apical end: the one whose plane lies nearer the
    truth's apex point (any long-axis view's)."""
    apex = truth_lm[(truth_lm["observer"] == "truth") & (truth_lm["landmark"] == "apex")]
    if len(slices) < 2 or not len(apex):
        return False
    a = apex[["x_mm", "y_mm", "z_mm"]].to_numpy(float).mean(0)
    d = [abs(float((a - images.sax_planes[s].position_mm) @ images.sax_planes[s].normal)) for s in (slices[0], slices[-1])]
    return d[0] < d[1]


def at_threshold(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The records as decoding at ``threshold`` would report them: ``auto_present`` where the peak
    reaches it, and no automated distances where it does not."""
    out = df.assign(auto_present=df["confidence"] >= threshold)
    out.loc[~out["auto_present"], ["auto_obs1", "auto_obs2", "auto_truth"]] = np.nan
    return out


def print_misses(df: pd.DataFrame, threshold: float) -> None:
    """See the module's docstring."""
    df = df.assign(found=df["confidence"] >= threshold)
    print(f"\nAt threshold {threshold:g}: per view and landmark")
    print(f"  {'view':8s} {'landmark':20s} {'present':>7s} {'missed':>6s} {'<0.001':>6s} {'<0.01':>6s} "
          f"{'<0.05':>6s} {'end':>4s} {'det end':>8s} {'det inner':>9s} {'false +':>8s}")
    for (view, name), g in df.groupby(["view", "landmark"], sort=False):
        p = g[g["truth_present"]]
        m = p[~p["found"]]
        end = p["end_slice"].astype(bool)
        absent = g[~g["truth_present"]]["found"]
        bins = [int((m["confidence"] < b).sum()) for b in (0.001, 0.01, 0.05)]
        pct = lambda x: f"{100 * x.mean():7.1f}%" if len(x) else f"{'':8s}"  # noqa: E731
        print(f"  {view:8s} {name:20s} {len(p):7d} {len(m):6d} {bins[0]:6d} {bins[1]:6d} {bins[2]:6d} "
              f"{int(m['end_slice'].astype(bool).sum()):4d} {pct(p[end]['found'])} {pct(p[~end]['found']):>9s} "
              f"{pct(absent)}")


def print_boundary(df: pd.DataFrame, threshold: float) -> None:
    """SAX detection on images whose landmarks agree at every rendered depth and on boundary images
    (:func:`accuracy.boundary_table`)."""
    t = boundary_table(df, df["confidence"] >= threshold, ["exam_id", "slice", "frame"])
    print(f"\nSAX at threshold {threshold:g}, by the truth's presence across the depths each image averages")
    print(t.to_string(index=False, float_format=lambda x: f"{x:.2f}"))


def _found_lax(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Long-axis rows of landmarks the truth has and the network found at ``threshold``."""
    return df[(df["view"] != "sax") & df["truth_present"] & (df["confidence"] >= threshold)]


def _found_sax(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """SAX rows of landmarks the truth has and the network found at ``threshold``, on slices whose
    breathing is known (``breathing_mm`` not NaN)."""
    return df[(df["view"] == "sax") & df["truth_present"] & (df["confidence"] >= threshold)
              & df["breathing_mm"].notna()]


def with_breathing(recs: pd.DataFrame, breathing: pd.DataFrame) -> pd.DataFrame:
    """``recs`` (one exam's records) with the columns of ``breathing``
    (:func:`cmr_atlas.synth.slab.cine_breathing_mm`): a long-axis row gets its view's cine's, a SAX
    row its slice's (``slice`` = ``slice_index``); the rows keep their order."""
    b = breathing.rename(columns={"slice_index": "slice"})
    recs = recs.assign(_row=np.arange(len(recs)))
    is_sax = recs["view"] == "sax"
    lax = recs[~is_sax].merge(b[b["view"] != "sax"].drop(columns="slice"), on=["exam_id", "view"], how="left")
    sax = recs[is_sax].merge(b[b["view"] == "sax"].astype({"slice": recs.loc[is_sax, "slice"].dtype}),
                             on=["exam_id", "view", "slice"], how="left")
    return pd.concat([lax, sax]).sort_values("_row").drop(columns="_row").reset_index(drop=True)


def _print_breathing_split(found: pd.DataFrame, by: str, cine: pd.Series, title: str) -> None:
    """Points and mean distances of ``found`` rows per ``by`` on held and breathing cines (``cine``:
    each row's cine, counted)."""
    t = (found.assign(breathing=found["breathing_mm"] > 0, cine=cine)
         .groupby([by, "breathing"])
         .agg(points=("auto_truth", "size"), cines=("cine", "nunique"),
              auto_truth_mm=("auto_truth", "mean"), auto_obs1_mm=("auto_obs1", "mean")))
    print(title)
    print(t.to_string(float_format=lambda x: f"{x:.3f}"))


def print_breathing(df: pd.DataFrame, threshold: float) -> None:
    """Long-axis distances (per view) and SAX distances (per landmark; a SAX slice is a cine of its
    own) at ``threshold`` on cines acquired while the patient held the breath and on those acquired
    while the patient breathed (``breathing_mm`` > 0; clinical cohort)."""
    lax = _found_lax(df, threshold)
    _print_breathing_split(lax, "view", lax["exam_id"], f"\nLong-axis landmarks found at threshold {threshold:g}, "
                           "by whether the cine was acquired while the patient breathed")
    sax = _found_sax(df, threshold)
    if len(sax):
        _print_breathing_split(sax, "landmark", sax["exam_id"] + ":" + sax["slice"].astype(str),
                               f"\nSAX landmarks found at threshold {threshold:g}, by whether the slice's cine "
                               "was acquired while the patient breathed")


def breathing_shift_fit(df: pd.DataFrame, shift: str) -> dict:
    """On points of cines acquired while breathing (rows with ``breathing_mm`` > 0), the
    one factor k for which the network's error vector is nearest k times the cine's ``shift``
    (``mean`` or ``lowfreq``: :func:`cmr_atlas.synth.slab.breathing_shift_mm`), least squares over
    the points; with the mean error left before and after taking k times the shift away (mm)."""
    err = df[["auto_dx_mm", "auto_dy_mm", "auto_dz_mm"]].to_numpy(float)
    v = df[[f"{shift}_shift_{a}_mm" for a in "xyz"]].to_numpy(float)
    k = float((err * v).sum() / (v * v).sum()) if (v * v).sum() > 0 else float("nan")
    cines = df.groupby([c for c in ("exam_id", "view", "slice") if c in df], dropna=False).ngroups
    return {"shift": shift, "points": len(df), "cines": cines, "k": k,
            "shift_mm": float(np.linalg.norm(v, axis=1).mean()) if len(df) else float("nan"),
            "error_mm": float(np.linalg.norm(err, axis=1).mean()) if len(df) else float("nan"),
            "left_mm": float(np.linalg.norm(err - k * v, axis=1).mean()) if len(df) else float("nan")}


def print_breathing_shift(df: pd.DataFrame, threshold: float) -> None:
    """:func:`breathing_shift_fit` for both shifts, on the landmarks found at ``threshold``: the
    long-axis points pooled, the SAX points per landmark."""
    lax = _found_lax(df, threshold)
    groups = {"long axis": lax[lax["breathing_mm"] > 0].dropna(subset=["auto_dx_mm"])}
    if "sax" in set(df["view"]):
        sax = _found_sax(df, threshold)
        sax = sax[sax["breathing_mm"] > 0].dropna(subset=["auto_dx_mm"])
        groups |= {f"sax {n}": g for n, g in sax.groupby("landmark")}
    t = pd.DataFrame([{"points of": name} | breathing_shift_fit(g, s) for name, g in groups.items()
                      for s in ("mean", "lowfreq")])
    print("\nOn cines acquired while breathing: the network's error as k times the anatomy's in-plane shift "
          "from the centre line's place (the truth's), and the error left without it")
    print(t.to_string(index=False, float_format=lambda x: f"{x:.2f}"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", choices=list(SEQUENCE_OF), default="clinical")
    ap.add_argument("--n-exams", type=int, default=40)
    ap.add_argument("--seed", type=int, default=930001)
    ap.add_argument("--first-exam", type=int, default=0)
    ap.add_argument("--mi-fraction", type=float, default=0.2)
    ap.add_argument("--keep-exams", help="folder of kept exams (generated there the first time)")
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default=default("inference.precision"), choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--out", required=True, help="parquet of the per-landmark rows")
    ap.add_argument("--rotations", help="test-time rotations in degrees, e.g. -20,0,20, instead of the cards' "
                                        "(benchmarks/landmark_calibration.py compares sets)")
    ap.add_argument("--zooms", help="long-axis networks: test-time magnifications (unrotated looks), e.g. 0.87,1.15, "
                                    "instead of the cards' (decode.zooms; '' for none)")
    ap.add_argument("--neighbour-frames", type=int,
                    help="SAX networks: average each image's maps over this many cine frames on each side of it "
                         "instead of the cards' (decode.neighbour_frames; 0: none)")
    ap.add_argument("--lax-neighbour-frames", type=int,
                    help="long-axis networks: the same for each long-axis cine frame's maps")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    keep = Path(args.keep_exams) if args.keep_exams else None
    exams = (clinical_exams(args.n_exams, args.seed, 2, args.mi_fraction, keep) if args.cohort == "clinical"
             else generated(args.n_exams, args.seed, 2, args.mi_fraction, keep))
    models = load_models(args.models_dir, method="heatmap", device="cpu", precision=args.precision)
    for card in without_calibrated_thresholds(models):
        decode = card["decode"]
        if args.rotations is not None:
            decode["rotations_deg"] = [float(a) for a in args.rotations.split(",")]
        if args.zooms is not None and "sax" not in card.get("views", ["sax"]):
            decode["zooms"] = [float(z) for z in args.zooms.split(",") if z.strip()]
        if args.neighbour_frames is not None and "sax" in card.get("views", ["sax"]):
            decode["neighbour_frames"] = args.neighbour_frames
        if args.lax_neighbour_frames is not None and "sax" not in card.get("views", ["sax"]):
            decode["neighbour_frames"] = args.lax_neighbour_frames
    rows = []
    for n, (images, truth) in enumerate(exams, 1):
        if n <= args.first_exam:
            continue
        recs = exam_records(images, truth, models, SEQUENCE_OF[args.cohort])
        depths = sax_presence_by_depth(SEQUENCE_OF[args.cohort], args.seed, n - 1, args.mi_fraction,
                                       truth["landmarks"])
        recs = add_depth_presence(pd.DataFrame(recs), depths, images)
        if args.cohort == "clinical":
            recs = with_breathing(recs, cine_breathing_mm(args.seed, n - 1, args.mi_fraction))
        recs = recs.to_dict("records")
        rows += recs
        print(f"{args.cohort}: {n} exams", file=sys.stderr)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out)
    print(f"wrote {len(df)} rows to {args.out}")
    print_misses(df, default("landmarks.absent_threshold"))
    if "depths_present" in df:
        print_boundary(df, default("landmarks.absent_threshold"))
    if "breathing_mm" in df:
        print_breathing(df, default("landmarks.absent_threshold"))
        print_breathing_shift(df, default("landmarks.absent_threshold"))
    print_view_cis(at_threshold(df, default("landmarks.absent_threshold")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
