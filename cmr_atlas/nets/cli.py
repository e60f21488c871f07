"""``cmr-atlas train``: build annotated samples from a training cohort, then train each model.

    cmr-atlas train data  --out DATA [--n-exams 80 --seed 910000 | --cohort DIR --cache DIR]
    cmr-atlas train model NAME --data DATA --out resources/models [--minutes 20 --threads 1]
    cmr-atlas train all   --out resources/models --data DATA ...   (both steps, every model)

By default the training cohort is synthetic and generated in memory with seeds disjoint from the
demo and test cohorts (``--seed``, default 910000).  ``data`` writes ``seg.npz``,
``lm_lax.npz``, ``lm_sax.npz`` (see :class:`cmr_atlas.nets.data.Samples`) and ``data.json``
(provenance); ``model`` trains one model (names in :data:`cmr_atlas.nets.registry.MODELS`) and
writes its weights and model card.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..guidepoints import LANDMARKS
from ..imagecache import ExamImages, LABELS
from ..landmarks import MODEL_LANDMARKS, MODEL_VIEWS
from .data import Samples, landmark_samples, segmentation_samples
from .preprocess import Grid
from .registry import MODELS, save_model

log = logging.getLogger(__name__)

DEFAULT_SEED = 910000      # training cohort seeds: disjoint from demo/test cohorts (small seeds)
SEG_GRID = Grid(1.5, 128)  # 192 mm field of view
LM_GRID = Grid(1.5, 128)
SIGMA_MM = {"lax": 6.0, "sax": 4.0}  # Gaussian target width (Xue et al.: 8 px LAX / 4 px SAX at 1 mm)

Annotated = tuple[ExamImages, pd.DataFrame, pd.DataFrame]  # images, truth contours, truth landmarks


def generated_exams(n_exams: int, seed: int) -> Iterator[Annotated]:
    """Synthetic exams generated in memory (no DICOM round trip)."""
    from ..synth import cohort

    for i in range(n_exams):
        ex = cohort.generate_exam(seed=seed + i)
        yield ex.images, ex.truth["contours"], ex.truth["landmarks"]


def cohort_exams(cohort_dir: str | Path, cache_dir: str | Path, exam_id_key: str) -> Iterator[Annotated]:
    """Exams of an ingested synthetic cohort: truth tables + the ingest image cache."""
    from ..ids import exam_id
    from ..imagecache import load_exam_images

    truth = Path(cohort_dir) / "truth"
    subjects = pd.read_parquet(truth / "subjects.parquet")
    contours = pd.read_parquet(truth / "contours.parquet")
    landmarks = pd.read_parquet(truth / "landmarks.parquet")
    for label, uid in zip(subjects["exam_id"], subjects["study_instance_uid"]):
        path = Path(cache_dir) / f"{exam_id(uid, exam_id_key)}.npz"
        if not path.is_file():
            log.warning("no cache file for a truth exam; skipped")
            continue
        images = load_exam_images(path)
        yield images, contours[contours["exam_id"] == label], landmarks[landmarks["exam_id"] == label]


def build_data(exams: Iterator[Annotated], out: str | Path, seed: int, extra_frames: int = 2,
               provenance: dict | None = None) -> dict:
    rng = np.random.default_rng(seed)
    seg, lm = [], {m: [] for m in MODEL_VIEWS}
    n = 0
    for images, contours, landmarks in exams:
        seg.append(segmentation_samples(images, contours, SEG_GRID, rng, extra_frames))
        for m in MODEL_VIEWS:
            lm[m].append(landmark_samples(images, landmarks, m, LM_GRID, rng, extra_frames))
        n += 1
        log.info("training data: %d exams", n)
    out = Path(out)
    counts = {}
    for key, parts in (("seg", seg), *((f"lm_{m}", lm[m]) for m in MODEL_VIEWS)):
        samples = Samples.concat(parts)
        samples.save(out / f"{key}.npz")
        counts[key] = len(samples)
    info = {"n_exams": n, "seed": seed, "extra_frames": extra_frames, "images": counts,
            "segmentation_grid": SEG_GRID.to_dict(), "landmark_grid": LM_GRID.to_dict(),
            **(provenance or {})}
    (out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _card(name: str, grid: Grid, data_info: dict, report: dict, extra: dict) -> dict:
    return {
        "name": name,
        "description": MODELS[name],
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {**grid.to_dict(), "preprocessing": "per-image whitening, then bilinear resampling to "
                  "the grid centred on the image centre (zero outside the image)"},
        "training_data": data_info,
        "training": {k: v for k, v in report.items() if k != "history"},
        "history": report.get("history", []),
        **extra,
    }


def train_model(name: str, data_dir: str | Path, out_dir: str | Path, minutes: float, threads: int,
                seed: int, max_epochs: int = 60, batch_size: int = 16) -> list[Path]:
    from .train import TrainConfig, train_heatmap, train_segmentation, train_vgg_cyclic

    data_dir = Path(data_dir)
    info = json.loads((data_dir / "data.json").read_text())
    cfg = TrainConfig(max_epochs=max_epochs, batch_size=batch_size, max_seconds=minutes * 60,
                      seed=seed, threads=threads)
    if name == "seg_sax":
        model, rep = train_segmentation(Samples.load(data_dir / "seg.npz"), cfg)
        card = _card(name, SEG_GRID, info, rep, {"labels": LABELS, "loss": "cross-entropy + soft Dice"})
        return [save_model(model, card, out_dir)]
    if name.startswith("lm_heatmap_"):
        m = name.removeprefix("lm_heatmap_")
        sigma_px = SIGMA_MM[m] / LM_GRID.spacing_mm
        model, rep = train_heatmap(Samples.load(data_dir / f"lm_{m}.npz"), cfg, sigma_px, LM_GRID.spacing_mm)
        card = _card(name, LM_GRID, info, rep, {
            "channels": ["background", *MODEL_LANDMARKS[m]], "views": list(MODEL_VIEWS[m]),
            "landmarks_by_view": {v: list(LANDMARKS[v]) for v in MODEL_VIEWS[m]},
            "sigma_mm": SIGMA_MM[m], "loss": "KL + soft Dice (class weights 1, 5, 5, 5)"})
        return [save_model(model, card, out_dir)]
    if name == "lm_vgg":
        from .data import VIEW_CODES

        by_view = {}
        for m in MODEL_VIEWS:
            s = Samples.load(data_dir / f"lm_{m}.npz")
            for v in MODEL_VIEWS[m]:
                by_view[v] = s.subset(np.flatnonzero(s.view == VIEW_CODES[v]))
        models, rep = train_vgg_cyclic(by_view, cfg, LM_GRID.spacing_mm)
        paths = []
        for v, model in models.items():
            card = _card(f"lm_vgg_{v}", LM_GRID, info, rep["views"][v], {
                "landmarks": list(LANDMARKS[v]), "views": [v], "loss": "MSE of normalised coordinates",
                "cyclic_transfer_stages": rep["stages"], "output": "normalised (row, col) in [-1, 1]"})
            paths.append(save_model(model, card, out_dir))
        return paths
    raise SystemExit(f"unknown model {name!r}: choose seg_sax, lm_heatmap_lax, lm_heatmap_sax or lm_vgg")


TRAINABLE = ("seg_sax", "lm_heatmap_lax", "lm_heatmap_sax", "lm_vgg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="train_command", metavar="STEP", required=True)
    d = sub.add_parser("data", help="build annotated training samples")
    m = sub.add_parser("model", help="train one model from built samples")
    a = sub.add_parser("all", help="build samples and train every model")
    for q in (d, a):
        q.add_argument("--n-exams", type=int, default=80, help="synthetic training exams")
        q.add_argument("--seed", type=int, default=DEFAULT_SEED, help="first exam seed (exam i: seed + i)")
        q.add_argument("--extra-frames", type=int, default=2, help="frames per slice besides ED and ES")
        q.add_argument("--cohort", help="use an ingested synthetic cohort (truth/) instead of generating")
        q.add_argument("--cache", help="image cache of that cohort")
        q.add_argument("--exam-id-key", default="cmr-atlas-demo-key", help="ingest's exam_id_key")
    d.add_argument("--out", required=True, help="data folder")
    m.add_argument("name", choices=TRAINABLE)
    m.add_argument("--data", required=True, help="data folder from `train data`")
    a.add_argument("--data", required=True, help="data folder to write")
    for q in (m, a):
        q.add_argument("--out", required=True, help="models folder (resources/models)")
        q.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget per model")
        q.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        q.add_argument("--train-seed", type=int, default=0, help="seed of initialisation, split and augmentation")
        q.add_argument("--max-epochs", type=int, default=60)
        q.add_argument("--batch-size", type=int, default=16)


def _data(args, out) -> dict:
    if args.cohort:
        if not args.cache:
            raise SystemExit("--cohort needs --cache")
        exams = cohort_exams(args.cohort, args.cache, args.exam_id_key)
        prov = {"source": "ingested cohort"}
    else:
        exams = generated_exams(args.n_exams, args.seed)
        prov = {"source": "synthetic, generated in memory", "exam_seeds": [args.seed, args.seed + args.n_exams - 1]}
    return build_data(exams, out, args.seed, args.extra_frames, prov)


def run(args: argparse.Namespace) -> int:
    if args.train_command == "data":
        _data(args, args.out)
        return 0
    names = [args.name] if args.train_command == "model" else list(TRAINABLE)
    if args.train_command == "all":
        _data(args, args.data)
    for name in names:
        for p in train_model(name, args.data, args.out, args.minutes, args.threads, args.train_seed,
                             args.max_epochs, args.batch_size):
            log.info("wrote %s", p)
    return 0
