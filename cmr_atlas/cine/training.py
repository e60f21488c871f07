"""``cmr-atlas train``: build annotated samples from a training cohort, then train each model.

    cmr-atlas train data  --out DATA [--n-exams 80 --seed 910000 | --cohort DIR --cache DIR]
    cmr-atlas train model NAME --data DATA --out resources/models [--minutes 20 --threads 1]
    cmr-atlas train all   --out resources/models --data DATA ...   (both steps, every model)

By default the training cohort is synthetic and generated in memory with seeds disjoint from the
demo and test cohorts (cohort ``--seed``, default 910000; the demo uses 20001).  ``data`` writes ``seg.npz``,
``lm_lax.npz``, ``lm_sax.npz`` (see :class:`cmr_atlas.cine.training_data.Samples`) and ``data.json``
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

from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.core.vocab import LABELS, LANDMARKS
from cmr_atlas.cine.landmarks import MODEL_LANDMARKS, MODEL_VIEWS
from cmr_atlas.cine.training_data import Samples, landmark_samples, segmentation_samples
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.registry import MODELS, save_model

log = logging.getLogger(__name__)

DEFAULT_SEED = 910000      # training cohort seeds: disjoint from demo/test cohorts (small seeds)
SEG_GRID = Grid(1.5, 128)  # 192 mm field of view
LM_GRID = Grid(1.5, 128)
LAX_EXTRA_FRAMES = 4  # LAX cines: ED, ES and extra_frames + 4 other frames
SIGMA_MM = {"lax": 6.0, "sax": 4.0}  # Gaussian target width (Xue et al.: 8 px LAX / 4 px SAX at 1 mm)

Annotated = tuple[ExamImages, pd.DataFrame, pd.DataFrame]  # images, truth contours, truth landmarks


def generated_exam(seed: int, index: int, mi_fraction: float = 0.2) -> Annotated:
    """Synthetic exam ``index`` of cohort ``seed``, generated in memory (no DICOM round trip)."""
    from cmr_atlas.synth.mesa import cohort

    ex = cohort.generate_exam(seed, index, mi_fraction=mi_fraction)
    return ex.images, ex.truth["contours"], ex.truth["landmarks"]


def cohort_exams(cohort_dir: str | Path, cache_dir: str | Path, exam_id_key: str) -> Iterator[Annotated]:
    """Exams of an ingested synthetic cohort: truth tables + the ingest image cache."""
    from cmr_atlas.core.ids import exam_id
    from cmr_atlas.core.imagecache import load_exam_images

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


def exam_samples(exam: Annotated, rng: np.random.Generator, extra_frames: int) -> dict[str, Samples]:
    images, contours, landmarks = exam
    out = {"seg": segmentation_samples(images, contours, SEG_GRID, rng, extra_frames)}
    for m in MODEL_VIEWS:
        # a cine has only two LAX images per frame: take more frames of it
        extra = extra_frames + LAX_EXTRA_FRAMES if m == "lax" else extra_frames
        out[f"lm_{m}"] = landmark_samples(images, landmarks, m, LM_GRID, rng, extra)
    return out


def _generated_samples(job: tuple[int, int, int, float]) -> dict[str, Samples]:
    seed, index, extra, mi = job
    # per-exam generator: the same samples whatever the number of worker processes
    return exam_samples(generated_exam(seed, index, mi), np.random.default_rng([seed, index]), extra)


def build_data(out: str | Path, seed: int, n_exams: int = 80, extra_frames: int = 2, jobs: int = 1,
               mi_fraction: float = 0.2, exams: Iterator[Annotated] | None = None,
               provenance: dict | None = None) -> dict:
    """Write the training samples of ``n_exams`` generated exams (or of ``exams``) to ``out``."""
    if exams is None:
        todo = [(seed, i, extra_frames, mi_fraction) for i in range(n_exams)]
        if jobs > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(jobs) as pool:
                parts = []
                for i, r in enumerate(pool.imap(_generated_samples, todo)):
                    parts.append(r)
                    log.info("training data: %d/%d exams", i + 1, n_exams)
        else:
            parts = []
            for i, job in enumerate(todo):
                parts.append(_generated_samples(job))
                log.info("training data: %d/%d exams", i + 1, n_exams)
        provenance = {"source": "synthetic, generated in memory (cmr_atlas.synth.mesa.cohort.generate_exam)",
                      "cohort_seed": seed, "exam_indices": [0, n_exams - 1], "mi_fraction": mi_fraction,
                      **(provenance or {})}
    else:
        rng = np.random.default_rng(seed)
        parts = [exam_samples(e, rng, extra_frames) for e in exams]
    out = Path(out)
    counts = {}
    for key in ("seg", *(f"lm_{m}" for m in MODEL_VIEWS)):
        samples = Samples.concat([p[key] for p in parts])
        samples.save(out / f"{key}.npz")
        counts[key] = len(samples)
    info = {"n_exams": len(parts), "extra_frames": extra_frames, "images": counts,
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


def load_data(data_dirs: list[str | Path], key: str) -> tuple[Samples, dict]:
    """Samples ``key`` (seg, lm_lax, lm_sax) of one or more ``train data`` folders, concatenated
    (exams stay distinct, so the exam-wise split holds), and the provenance of each folder."""
    infos, parts = [], []
    for d in map(Path, data_dirs):
        if not (d / "data.json").is_file():
            raise SystemExit(f"{d}: not a training-data folder (no data.json; build it with `cmr-atlas train data`)")
        info = json.loads((d / "data.json").read_text())
        if infos and (info["segmentation_grid"], info["landmark_grid"]) != (
                infos[0]["segmentation_grid"], infos[0]["landmark_grid"]):
            raise SystemExit(f"{d}: its network grids differ from {data_dirs[0]}'s; rebuild it")
        infos.append(info)
        parts.append(Samples.load(d / f"{key}.npz"))
    info = infos[0] if len(infos) == 1 else {
        "n_exams": sum(i["n_exams"] for i in infos),
        "images": {k: sum(i["images"][k] for i in infos) for k in infos[0]["images"]},
        "segmentation_grid": infos[0]["segmentation_grid"], "landmark_grid": infos[0]["landmark_grid"],
        "parts": infos}
    return Samples.concat(parts), info


def train_model(name: str, data_dirs: str | Path | list[str | Path], out_dir: str | Path, minutes: float,
                threads: int, seed: int, max_epochs: int = 60, batch_size: int = 16,
                steps_per_epoch: int | None = 60, init_from: str | Path | None = None,
                zoom: tuple[float, float] | None = None, vgg_transfer: bool = True) -> list[Path]:
    """Train model ``name`` on one or more ``train data`` folders; with ``init_from`` (a models
    folder) continue from its weights of the same name, and the card keeps the earlier runs'
    records under ``previous_runs``."""
    from cmr_atlas.nets.train import TrainConfig, train_heatmap, train_segmentation, train_vgg_cyclic

    data_dirs = [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)
    cfg = TrainConfig(max_epochs=max_epochs, batch_size=batch_size, max_seconds=minutes * 60,
                      seed=seed, threads=threads, steps_per_epoch=steps_per_epoch or None)
    init_state, previous = None, []
    if init_from and name != "lm_vgg":
        from cmr_atlas.nets.registry import load_model

        prev_model, prev_card = load_model(name, init_from)
        init_state = prev_model.state_dict()
        previous = prev_card.get("previous_runs", []) + [{
            "sha256": prev_card["sha256"], "training": prev_card.get("training"),
            "history": prev_card.get("history", [])}]
    if name == "seg_sax":
        from dataclasses import replace

        from cmr_atlas.nets.augment import SEGMENTATION_AUG

        aug = SEGMENTATION_AUG if zoom is None else replace(SEGMENTATION_AUG, zoom=tuple(zoom))
        samples, info = load_data(data_dirs, "seg")
        model, rep = train_segmentation(samples, cfg, init_state=init_state, aug=aug)
        card = _card(name, SEG_GRID, info, rep, {"labels": LABELS, "loss": "cross-entropy + soft Dice",
                                                 "previous_runs": previous})
        return [save_model(model, card, out_dir)]
    if name.startswith("lm_heatmap_"):
        m = name.removeprefix("lm_heatmap_")
        sigma_px = SIGMA_MM[m] / LM_GRID.spacing_mm
        samples, info = load_data(data_dirs, f"lm_{m}")
        model, rep = train_heatmap(samples, cfg, sigma_px, LM_GRID.spacing_mm, init_state=init_state)
        card = _card(name, LM_GRID, info, rep, {
            "channels": ["background", *MODEL_LANDMARKS[m]], "views": list(MODEL_VIEWS[m]),
            "landmarks_by_view": {v: list(LANDMARKS[v]) for v in MODEL_VIEWS[m]},
            "sigma_mm": SIGMA_MM[m], "loss": "KL + soft Dice (class weights 1, 5, 5, 5)",
            "previous_runs": previous})
        return [save_model(model, card, out_dir)]
    if name == "lm_vgg":
        from cmr_atlas.cine.training_data import VIEW_CODES

        by_view = {}
        for m in MODEL_VIEWS:
            s, info = load_data(data_dirs, f"lm_{m}")
            for v in MODEL_VIEWS[m]:
                by_view[v] = s.subset(np.flatnonzero(s.view == VIEW_CODES[v]))
        models, rep = train_vgg_cyclic(by_view, cfg, LM_GRID.spacing_mm, transfer=vgg_transfer)
        paths = []
        for v, model in models.items():
            card = _card(f"lm_vgg_{v}", LM_GRID, info, rep["views"][v], {
                "landmarks": list(LANDMARKS[v]), "views": [v], "loss": "MSE of normalised coordinates",
                "schedule": "cyclic transfer" if vgg_transfer else "independent",
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
        q.add_argument("--seed", type=int, default=DEFAULT_SEED, help="synthetic cohort seed (exams 0..n-1)")
        q.add_argument("--mi-fraction", type=float, default=0.2, help="fraction of MI exams")
        q.add_argument("--jobs", type=int, default=1, help="worker processes generating exams")
        q.add_argument("--extra-frames", type=int, default=2, help="frames per slice besides ED and ES")
        q.add_argument("--cohort", help="use an ingested synthetic cohort (truth/) instead of generating")
        q.add_argument("--cache", help="image cache of that cohort")
        q.add_argument("--exam-id-key", default="cmr-atlas-demo-key", help="ingest's exam_id_key")
    d.add_argument("--out", required=True, help="data folder")
    m.add_argument("name", choices=TRAINABLE)
    m.add_argument("--data", required=True, nargs="+", help="data folder(s) from `train data` (several are pooled)")
    a.add_argument("--data", required=True, help="data folder to write")
    for q in (m, a):
        q.add_argument("--out", required=True, help="models folder (resources/models)")
        q.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget per model")
        q.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        q.add_argument("--train-seed", type=int, default=0, help="seed of initialisation, split and augmentation")
        q.add_argument("--max-epochs", type=int, default=60)
        q.add_argument("--batch-size", type=int, default=16)
        q.add_argument("--init-from", help="continue from the same-named model in this models folder (U-Nets)")
        q.add_argument("--zoom", type=float, nargs=2, metavar=("LO", "HI"), help="segmentation zoom range")
        q.add_argument("--steps-per-epoch", type=int, default=60,
                       help="batches between validations (0 = one pass over the training images)")
        q.add_argument("--vgg-schedule", choices=["cyclic", "independent"], default="cyclic",
                       help="lm_vgg: the legacy paper's cyclic transfer between views, or its baseline "
                            "of independently trained networks (same budget; for the Table A-1 comparison)")


def _data(args, out) -> dict:
    if args.cohort:
        if not args.cache:
            raise SystemExit("--cohort needs --cache")
        return build_data(out, args.seed, extra_frames=args.extra_frames,
                          exams=cohort_exams(args.cohort, args.cache, args.exam_id_key),
                          provenance={"source": "ingested synthetic cohort"})
    return build_data(out, args.seed, args.n_exams, args.extra_frames, args.jobs, args.mi_fraction)


def run(args: argparse.Namespace) -> int:
    if args.train_command == "data":
        _data(args, args.out)
        return 0
    names = [args.name] if args.train_command == "model" else list(TRAINABLE)
    if args.train_command == "all":
        _data(args, args.data)
    for name in names:
        for p in train_model(name, args.data, args.out, args.minutes, args.threads, args.train_seed,
                             args.max_epochs, args.batch_size, args.steps_per_epoch,
                             getattr(args, "init_from", None), getattr(args, "zoom", None),
                             args.vgg_schedule == "cyclic"):
            log.info("wrote %s", p)
    return 0


if __name__ == "__main__":  # python -m cmr_atlas.cine.training STEP ... (same as `cmr-atlas train`)
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _p = argparse.ArgumentParser(prog="cmr-atlas train")
    add_arguments(_p)
    sys.exit(run(_p.parse_args()))
