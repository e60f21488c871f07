"""Landmarks on the LGE (magnitude and PSIR) or T1 maps (native, post-contrast; ``--sequence t1map``)
of held-out synthetic clinical exams: the cine networks unchanged, fine-tuned on LGE (transfer
learning, as Xue et al. 2021) and trained from scratch on the same LGE data (issue 16).

    PYTHONPATH=. python benchmarks/landmarks_lge.py [--sequence lge] --n-exams 12 --seed 940001 \
        --models cine=cine transfer=DIR1 scratch=DIR2 [--keep-exams DIR] [--threads 2]

Each ``LABEL=DIR`` is a folder with the sequence's own networks (``lm_heatmap_sax_lge``,
``lm_heatmap_sax_t1map``: the shipped ones) or networks of the cine names (``lm_heatmap_sax``,
``lm_heatmap_lax``: a training run's output); a network it lacks is taken from ``--base`` (the
shipped cine networks); ``LABEL=cine`` is the cine networks unchanged.  Without ``--models``: the
networks the pipeline runs, ``shipped=--base``.  The transfer-learning table:

    python benchmarks/landmarks_lge.py --sequence lge --n-exams 16 --seed 940001 --keep-exams DIR \
        --models cine=cine transfer=/work/lmdata/lge4/transfer scratch=/work/lmdata/lge4/scratch
    python benchmarks/landmarks_lge.py --sequence t1map --n-exams 40 --seed 940003 --keep-exams DIR \
        --models cine=cine shipped=resources/models lge_transfer=/work/lmdata/lge4/transfer \
        transfer=/work/lmdata/t1/transfer from_lge=/work/lmdata/t1/from_lge scratch=/work/lmdata/t1/scratch

Test cohorts: clinical exams of seed 940001 (LGE) and 940003 (T1 maps) (exams 0..n-1, two
simulated observers on every image, MI fraction 0.3), only their scout (for the operator's TI) and
LGE rendered (:func:`cmr_atlas.cine.training_lge.clinical_lge`), or their T1 maps
(``clinical_t1map``).  Disjoint from the training seeds (LGE 940000, T1 maps 940002), the LGE
validation cohort that chooses between networks (941000, exams 0-23; since 2026-12-04) and every cine
seed (910000-910001, 920000, 930001, 30001, 86).  Printed per model, reconstruction and view:
detection rate (images with every present landmark detected, the paper's success rate), landmarks
detected, SAX false positives (a landmark found on a slice the truth has none on), mean distance to
each observer and observer vs observer; on LGE, the SAX detection split into images whose
landmarks the truth has at all or none of the depths the renderer averages and boundary images
(:mod:`cmr_atlas.synth.slab`); then the per-landmark tables of :func:`accuracy.print_tables`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import GOAL_LGE_T1_MM, add_depth_presence, boundary_table, landmark_records, print_tables  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.imagecache import load_exam_images, save_exam_images  # noqa: E402
from cmr_atlas.cine.inference import detect_landmarks, load_models  # noqa: E402
from cmr_atlas.cine.training_lge import RECONSTRUCTIONS, T1_MAPS, clinical_lge, clinical_t1map  # noqa: E402
from cmr_atlas.synth.slab import sax_presence_by_depth  # noqa: E402

NETWORKS = ("lm_heatmap_sax", "lm_heatmap_lax", "seg_sax")


SEQUENCES = {"lge": (clinical_lge, RECONSTRUCTIONS), "t1map": (clinical_t1map, T1_MAPS)}


def test_exams(sequence: str, n: int, seed: int, mi_fraction: float, keep: Path | None):
    """``(images by reconstruction, truth landmarks)`` of held-out exams' ``sequence``
    (:data:`SEQUENCES`); with ``keep`` stored there the first time and reused."""
    render, kinds = SEQUENCES[sequence]
    for i in range(n):
        stem = None if keep is None else keep / f"{seed}-{i:04d}"
        truth_path = Path(f"{stem}.{sequence}.landmarks.parquet")
        if stem is not None and truth_path.is_file():
            yield {k: load_exam_images(Path(f"{stem}.{k}.npz")) for k in kinds}, pd.read_parquet(truth_path)
            continue
        images, truth = render(seed, i, mi_fraction, observers=2)
        if stem is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for k, im in images.items():
                save_exam_images(im, Path(f"{stem}.{k}.npz"))
            truth["landmarks"].to_parquet(truth_path)
        yield images, truth["landmarks"]


def models_folder(base: Path, override: Path | None, tmp: Path, sequence: str) -> Path:
    """A models folder under the cine networks' names with, for each network, ``override``'s
    network of the sequence (``<name>_<sequence>``, the shipped per-sequence networks), else its
    network of the generic name, else ``base``'s (symlinks); ``override`` None: ``base``'s cine
    networks unchanged."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in NETWORKS:
        found = [(d, n) for d, n in ((override, f"{name}_{sequence}"), (override, name)) if d is not None
                 and (d / f"{n}.json").is_file()]
        src, stem = found[0] if found else (base, name)
        (tmp / f"{name}.pt").symlink_to((src / f"{stem}.pt").resolve())
        card = json.loads((src / f"{stem}.json").read_text())
        (tmp / f"{name}.json").write_text(json.dumps({**card, "weights_file": f"{name}.pt"}))
    return tmp


def evaluate(exams, models_by_label: dict, threshold: float, batch: int, depths_of=None,
             paired: bool = False) -> pd.DataFrame:
    """Per landmark records of every model on every reconstruction of every exam; with
    ``depths_of(index, truth landmarks)`` (:func:`sax_presence_by_depth` of exam ``index``) the SAX
    rows also carry ``depths_present`` / ``n_depths`` (:func:`accuracy.add_depth_presence`).  With
    ``paired`` every model also runs as ``"<label> paired"``: each reconstruction with the other
    reconstructions of the same acquisition as companions (their maps averaged,
    :func:`detect_landmarks`)."""
    rows = []
    for n, (images, truth_lm) in enumerate(exams, 1):
        depths = None if depths_of is None else depths_of(n - 1, truth_lm)
        runs = [(label, models, False) for label, models in models_by_label.items()]
        runs += [(f"{label} paired", models, True) for label, models in models_by_label.items() if paired]
        for label, models, pair in runs:
            for kind, im in images.items():
                companions = [other for k, other in images.items() if k != kind] if pair else []
                lm = detect_landmarks(im, models, [0], absent_threshold=threshold, batch=batch, companions=companions)
                recs, _ = landmark_records(im, truth_lm, lm, label, 0, 0)
                recs = pd.DataFrame([{**r, "reconstruction": kind} for r in recs])
                if depths is not None:
                    recs = add_depth_presence(recs, depths, im)
                rows += recs.to_dict("records")
        print(f"evaluated {n} exams", file=sys.stderr)
    return pd.DataFrame(rows)


def print_boundary(lm: pd.DataFrame) -> None:
    """Per model and reconstruction, SAX detection on images whose landmarks agree at every depth
    the renderer averages and on boundary images (:func:`accuracy.boundary_table`)."""
    print("\nSAX by the truth's presence across the depths each image averages (centre, +-1/3 thickness)")
    for (method, kind), g in lm.groupby(["method", "reconstruction"], sort=False):
        t = boundary_table(g, g["auto_present"].astype(bool), ["exam_id", "reconstruction", "slice", "frame"])
        print(f"  {method} {kind}")
        print(t.to_string(index=False, float_format=lambda x: f"{x:.2f}"))


def summary_table(lm: pd.DataFrame) -> pd.DataFrame:
    """Per model, reconstruction (and both pooled) and view: the figures of the issue's table."""
    out = []
    lm = lm.assign(image_of=lm["reconstruction"])  # an image: exam, reconstruction, slice, frame
    pooled = lm.assign(reconstruction="both")
    for (method, kind, view), g in pd.concat([lm, pooled]).groupby(["method", "reconstruction", "view"], sort=False):
        tp = g[g["truth_present"]]
        per_image = tp.groupby(["exam_id", "image_of", "slice", "frame"])["auto_present"].all()
        fp = g[~g["truth_present"]]["auto_present"]
        out.append({"model": method, "reconstruction": kind, "view": view, "images": len(per_image),
                    "detected_pct": 100 * per_image.mean(), "landmarks_detected_pct": 100 * tp["auto_present"].mean(),
                    "false_pos_pct": 100 * fp.mean() if len(fp) else np.nan,
                    "auto_obs1_mm": tp["auto_obs1"].mean(), "auto_obs1_sd": tp["auto_obs1"].std(),
                    "auto_obs2_mm": tp["auto_obs2"].mean(), "auto_obs2_sd": tp["auto_obs2"].std(),
                    "obs1_obs2_mm": tp["obs1_obs2"].mean(), "obs1_obs2_sd": tp["obs1_obs2"].std()})
    return pd.DataFrame(out)


def print_summary(table: pd.DataFrame) -> None:
    print("\n| sequence | model | reconstruction | view | images | detected | landmarks detected | false + (SAX) "
          "| Auto vs Obs1 mm | Auto vs Obs2 mm | Obs1 vs Obs2 mm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        fp = "" if not np.isfinite(r.false_pos_pct) else f"{r.false_pos_pct:.1f} %"
        print(f"| {r.sequence} | {r.model} | {r.reconstruction} | {r.view} | {r.images} | {r.detected_pct:.1f} % | "
              f"{r.landmarks_detected_pct:.1f} % | {fp} | {r.auto_obs1_mm:.2f} ({r.auto_obs1_sd:.2f}) | "
              f"{r.auto_obs2_mm:.2f} ({r.auto_obs2_sd:.2f}) | {r.obs1_obs2_mm:.2f} ({r.obs1_obs2_sd:.2f}) |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default="lge", choices=list(SEQUENCES))
    ap.add_argument("--n-exams", type=int, default=12)
    ap.add_argument("--seed", type=int, default=940001, help="held-out cohort seed (LGE 940001, T1 maps 940003)")
    ap.add_argument("--mi-fraction", type=float, default=0.3)
    ap.add_argument("--base", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--models", nargs="+", default=None,
                    help="LABEL=DIR ... (default: shipped=--base, the networks the pipeline runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default=default("inference.precision"), choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--keep-exams", help="folder to store the generated test exams in (and reuse them from)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--out", help="parquet of the per-landmark rows (every model and reconstruction)")
    ap.add_argument("--paired", action="store_true",
                    help="also run every model on each reconstruction with the other of the same acquisition "
                         "(magnitude with PSIR: their heatmaps averaged), labelled '<label> paired'")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    keep = Path(args.keep_exams) if args.keep_exams else None
    exams = test_exams(args.sequence, args.n_exams, args.seed, args.mi_fraction, keep)
    if args.generate_only:
        for i, _ in enumerate(exams):
            print(f"generated {i + 1}/{args.n_exams}", file=sys.stderr)
        return 0
    specs = [s.split("=", 1) for s in (args.models or [f"shipped={args.base}"])]
    if any(len(s) != 2 for s in specs):
        raise SystemExit("--models: give LABEL=DIR")
    with tempfile.TemporaryDirectory() as tmp:
        models = {label: load_models(models_folder(Path(args.base), None if d == "cine" else Path(d), Path(tmp) / label,
                                                   args.sequence), method="heatmap", device="cpu",
                                     precision=args.precision) for label, d in specs}
        # LGE: re-derive each SAX landmark's presence at the depths the renderer averages (T1 maps: not re-derived)
        depths_of = None if args.sequence != "lge" else (
            lambda i, truth_lm: sax_presence_by_depth("lge", args.seed, i, args.mi_fraction, truth_lm))
        lm = evaluate(exams, models, default("landmarks.absent_threshold"), default("inference.batch"), depths_of,
                      paired=args.paired)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        lm.to_parquet(args.out)
    n = lm["exam_id"].nunique() if len(lm) else 0
    what = "LGE (magnitude + PSIR)" if args.sequence == "lge" else "T1 maps (native + post-contrast)"
    print(f"\n===== held-out {what}, clinical seed {args.seed}: {n} exams; "
          f"models {', '.join(f'{a}={b}' for a, b in specs)}")
    print_summary(summary_table(lm).assign(sequence=args.sequence))
    if "depths_present" in lm:
        print_boundary(lm)
    for kind, g in lm.groupby("reconstruction"):
        print(f"\n----- reconstruction {kind}")
        print_tables({"landmarks": g.to_dict("records"), "dice": [], "measures": [], "phases": []}, None,
                     goal_mm=GOAL_LGE_T1_MM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
