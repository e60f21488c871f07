"""Training of the perfusion segmentation network on synthetic clinical exams.

Samples: every slice of every stress and rest series of exams ``(seed, index)`` generated in memory
(:mod:`cmr_atlas.perfusion.synthetic`), motion-corrected by the pipeline's own
:func:`~cmr_atlas.perfusion.motion.correct_series`, turned into network inputs by
:func:`~cmr_atlas.perfusion.segment.net_input`; labels: the generator's class maps at the heart's
median position: the class fractions they come from (through-plane partial volume over the slice
profile) resampled bilinearly to the same grid.  ``--targets hard`` (default) trains on the class
covering half of each grid pixel, ``soft`` on the fractions themselves (KL divergence + soft Dice,
:func:`~cmr_atlas.nets.losses.heatmap_loss`; no better on validation exams: docs/perfusion.md); a nearest-neighbour copy of the 2.26 mm class map (before
2026-12-04) taught the network the native pixels' staircase (docs/perfusion.md).  Training seeds (920000+) are disjoint from
every test cohort (tests 86, benchmarks 880xxx).

    python -m cmr_atlas.perfusion.train samples --seed 920000 --n 90 --out samples.npz
    python -m cmr_atlas.perfusion.train fit samples.npz [more.npz ...] --minutes 20 --models-dir resources/models

The RV insertion network (:mod:`cmr_atlas.perfusion.insertion_net`) trains on a ``train data``
folder of each slice's temporal maximum, fine-tuning the cine SAX landmark network:

    python -m cmr_atlas.perfusion.train landmark-data --seed 920000 --n 240 --jobs 2 --out DATA
    cmr-atlas train model lm_heatmap_sax --data DATA --init-from resources/models --out RUN
    cmr-atlas train publish lm_heatmap_sax_perfusion --from RUN --out resources/models
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from cmr_atlas.core.config import default, find_models_dir
from cmr_atlas.nets.augment import AugmentConfig, augment_batch
from cmr_atlas.nets.losses import heatmap_loss, segmentation_loss
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.resunet import ResUNet
from cmr_atlas.nets.runtime import autocast, cpu_has_native_bf16, pick_device
from cmr_atlas.nets.train import TrainConfig, _fit, _split, mean_dice
from cmr_atlas.perfusion import motion, prepare, segment, synthetic

INPUT = {"spacing_mm": 1.5, "size": 96, "frame_offsets": list(range(-8, 24, 2)),
         "preprocessing": "motion-corrected dynamic frames at the offsets (heartbeats) from the frame where the "
                          "heart region peaks, bilinear to the grid centred on the motion window centre, "
                          "divided by the 99.5th percentile"}
AUG = AugmentConfig(rotation_deg=180.0, zoom=(0.85, 1.15), shift_px=10.0, brightness=0.2, contrast=0.3,
                    noise_sd=0.03)


@dataclass
class Samples:
    images: np.ndarray  # (M, channels, n, n) float16
    labels: np.ndarray  # (M, 3, n, n) float16: LV cavity, myocardium, RV fractions on the grid
    exam: np.ndarray  # (M,)
    exam_ids: list[str]
    points: None = None

    def __len__(self) -> int:
        return len(self.labels)


def exam_samples(ex: synthetic.SyntheticPerfusion, grid: dict = INPUT) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Network inputs and grid labels of every slice of one synthetic exam (``grid``: the card's
    ``input``)."""
    xs, ys = [], []
    for p in prepare.prepare_exam(ex.series):
        if not p.ok:
            continue
        sp = tuple(float(v) for v in p.series.planes[0].pixel_spacing_mm)
        near = motion.series_heart_centre([p.frames(k) for k in range(len(p.order))], p.n_pd, float(np.mean(sp)))
        for k in range(len(p.order)):
            mc = motion.correct_series(p.frames(k), p.n_pd, float(np.mean(sp)), near_rc=near)
            xs.append(segment.net_input(mc.frames[p.n_pd:], mc.centre_rc, sp, {"input": grid}).astype(np.float16))
            si = [s for s in sorted({key[1] for key in ex.labels})][k]
            coords = segment.grid_coords(mc.centre_rc, sp, grid["spacing_mm"], grid["size"])
            fr = ex.fractions[(p.condition, si)]
            ys.append(np.stack([ndimage.map_coordinates(f, coords, order=1, cval=0.0) for f in fr]).astype(np.float16))
    return xs, ys


def _exam_job(args: tuple[int, int, dict]) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    seed, index, grid = args
    ex = synthetic.generate(seed, index, observers=0)
    x, y = exam_samples(ex, grid)
    return x, y, ex.exam_id


def build_samples(seed: int, n: int, out: str, spacing_mm: float = INPUT["spacing_mm"],
                  size: int = INPUT["size"], jobs: int = 1, start: int = 0) -> None:
    """Samples of exams ``start .. start + n - 1`` of cohort ``seed`` on the grid (``spacing_mm``,
    ``size``) to ``out`` (npz), written every 10 exams so a cut run leaves what it made; ``jobs``
    worker processes generate exams side by side (same file as one process)."""
    grid = {**INPUT, "spacing_mm": spacing_mm, "size": size}
    xs, ys, exam, ids = [], [], [], []
    t0 = time.monotonic()
    tasks = [(seed, i, grid) for i in range(start, start + n)]
    pool = None
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        # one torch thread per worker (set there only: the calling process keeps its own)
        pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=torch.set_num_threads,
                                   initargs=(1,))
    try:
        results = pool.map(_exam_job, tasks) if pool else map(_exam_job, tasks)
        for j, (x, y, exam_id) in enumerate(results):
            xs += x
            ys += y
            exam += [j] * len(x)
            ids.append(exam_id)
            print(f"exam {start + j}: {len(x)} slices, {time.monotonic() - t0:.0f} s", flush=True)
            if (j + 1) % 10 == 0 or j == n - 1:  # checkpoint: a cut run still leaves samples
                part = f"{out}.part.npz"  # renamed into place: a run killed while writing keeps the last file
                np.savez(part, images=np.stack(xs), labels=np.stack(ys), exam=np.array(exam), exam_ids=np.array(ids),
                         seed=seed, spacing_mm=spacing_mm, size=size)
                os.replace(part, out)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def load_samples(paths: list[str]) -> tuple[Samples, list[int], dict]:
    """The samples of one or more :func:`build_samples` files (exams numbered on across files),
    their cohort seeds and their grid (the card's ``input``)."""
    parts = [np.load(p) for p in paths]
    grids = {(float(z["spacing_mm"]), int(z["size"])) if "spacing_mm" in z else (INPUT["spacing_mm"], INPUT["size"])
             for z in parts}
    if len(grids) > 1:
        raise ValueError(f"samples on different grids (spacing_mm, size): {sorted(grids)}")
    (spacing_mm, size), = grids
    exam, n = [], 0
    for z in parts:
        exam.append(z["exam"] + n)
        n += int(z["exam"].max()) + 1
    return (Samples(np.concatenate([z["images"] for z in parts]), np.concatenate([z["labels"] for z in parts]),
                    np.concatenate(exam), [str(e) for z in parts for e in z["exam_ids"]]),
            sorted({int(x) for z in parts for x in np.atleast_1d(z["seed"])}),
            {**INPUT, "spacing_mm": spacing_mm, "size": size})


def soft_targets(fractions: torch.Tensor) -> torch.Tensor:
    """(B, 4, n, n) class probabilities: background, then the (B, 3, n, n) foreground fractions."""
    fg = fractions.float()
    return torch.cat([(1.0 - fg.sum(1, keepdim=True)).clamp_min(0.0), fg], 1)


def hard_labels(fractions: torch.Tensor) -> torch.Tensor:
    """(B, n, n) the class covering at least half of each pixel (:func:`synthetic.label_map`)."""
    fg = fractions.float()
    return torch.where(fg.max(1).values >= 0.5, fg.argmax(1) + 1, 0)


def fit(samples_paths: list[str], minutes: float, models_dir: str, base: int, seed: int,
        targets: str = "hard", device: str = "cpu", batch_size: int = 16, patience: int = 12,
        steps_per_epoch: int = 25, max_epochs: int = 200) -> None:
    """Train ``perf_seg`` on the samples files and save weights + card to ``models_dir``; on
    ``device`` ``cuda`` (or ``auto`` where there is one) the samples live on the GPU and the steps
    run under bfloat16 autocast (the augmentation's geometry comes from the numpy generator as on the
    CPU; its pixel noise is drawn on the GPU, so a seed's batches differ between the two)."""
    s, seeds, grid = load_samples(samples_paths)
    cfg = TrainConfig(max_epochs=max_epochs, batch_size=batch_size, lr=1e-3, patience=patience,
                      max_seconds=minutes * 60, seed=seed, threads=2, steps_per_epoch=steps_per_epoch,
                      max_val_images=200)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    dev = pick_device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed input shapes: let cuDNN pick its kernels once
    model = ResUNet(s.images.shape[1], len(segment.CLASSES), base, 4).to(dev)
    tr, va, info = _split(s, cfg, rng)
    x_all = torch.from_numpy(s.images.astype(np.float32)).to(dev)
    y_all = torch.from_numpy(s.labels.astype(np.float32)).to(dev)
    hard_all = hard_labels(y_all)

    def loss_of(logits, fractions):
        if targets == "soft":
            return heatmap_loss(logits, soft_targets(fractions), 1.0)
        return segmentation_loss(logits, hard_labels(fractions), 1.0, [1, 2, 3])
    dtype = torch.bfloat16 if dev.type == "cuda" or cpu_has_native_bf16() else None

    def step(idx):
        i = tr[idx]
        x, y, _ = augment_batch(rng, x_all[i], AUG, labels=y_all[i])
        with autocast(dev, dtype):
            logits = model(x)
        return loss_of(logits.float(), y)

    def val():
        with autocast(dev, dtype):
            logits = torch.cat([model(x_all[va[b:b + 32]]) for b in range(0, len(va), 32)]).float()
        loss = float(loss_of(logits, y_all[va]))
        pred, truth = logits.argmax(1).cpu().numpy(), hard_all[va].cpu().numpy()
        return loss, {f"dice_{c}": mean_dice(pred, truth, k) for k, c in enumerate(segment.CLASSES) if k}

    report = _fit(model, step, val, len(tr), cfg, rng, "perf_seg")
    report.update(info, train_config=cfg.to_dict(), augmentation=AUG.to_dict(), targets=targets,
                  precision="bfloat16 autocast" if dtype else "float32",
                  device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu")
    model = model.cpu()
    card = {"name": segment.MODEL_NAME, "description": "perfusion 2D+T residual U-Net: " + ", ".join(segment.CLASSES),
            "sequences": ["perfusion"], "views": ["sax"], "classes": list(segment.CLASSES), "input": grid,
            "training_data": {"source": "synthetic clinical exams in memory (cmr_atlas.perfusion.synthetic)",
                              "cohort_seeds": seeds,
                              "exam_labels": [str(e) for e in s.exam_ids],
                              "n_exams": len(s.exam_ids), "n_slices": len(s),
                              "disjoint_from": "test seed 86 (tests/conftest.py), benchmark seed 880000"},
            "training": {k: v for k, v in report.items() if k != "history"}, "history": report["history"]}
    print(save_model(model, card, models_dir))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("samples")
    a.add_argument("--seed", type=int, default=920000)
    a.add_argument("--n", type=int, default=90)
    a.add_argument("--start", type=int, default=0, help="first exam index")
    a.add_argument("--jobs", type=int, default=1, help="worker processes")
    a.add_argument("--out", required=True)
    a.add_argument("--spacing-mm", type=float, default=INPUT["spacing_mm"], help="the network grid's pixel size")
    a.add_argument("--size", type=int, default=INPUT["size"], help="the network grid's pixels per side")
    c = sub.add_parser("landmark-data", help="train data folder of the RV insertion network (insertion_net)")
    c.add_argument("--seed", type=int, default=920000)
    c.add_argument("--n", type=int, default=240)
    c.add_argument("--start", type=int, default=0, help="first exam index")
    c.add_argument("--jobs", type=int, default=1, help="worker processes")
    c.add_argument("--out", required=True, help="data folder")
    c.add_argument("--models-dir", default=default("models_dir"), help="the grid is that of its lm_heatmap_sax card")
    b = sub.add_parser("fit")
    b.add_argument("samples", nargs="+", help="one or more files of the samples step")
    b.add_argument("--minutes", type=float, default=20.0)
    b.add_argument("--models-dir", required=True, help="where the weights and card go (e.g. resources/models)")
    b.add_argument("--base", type=int, default=16)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--targets", choices=("soft", "hard"), default="hard",
                   help="train on the class fractions (soft) or the class covering half of each pixel (hard)")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto (a GPU where there is one)")
    b.add_argument("--batch-size", type=int, default=16)
    b.add_argument("--patience", type=int, default=12, help="epochs without validation improvement before stopping")
    b.add_argument("--steps-per-epoch", type=int, default=25)
    b.add_argument("--max-epochs", type=int, default=200)
    args = ap.parse_args()
    if args.cmd == "samples":
        build_samples(args.seed, args.n, args.out, args.spacing_mm, args.size, args.jobs, args.start)
    elif args.cmd == "landmark-data":
        from cmr_atlas.nets.registry import card_grid, load_card
        from cmr_atlas.perfusion import insertion_net

        insertion_net.build_data(args.out, args.seed, args.start, args.n,
                                 card_grid(load_card("lm_heatmap_sax", find_models_dir(args.models_dir))), args.jobs)
    else:
        fit(args.samples, args.minutes, args.models_dir, args.base, args.seed, args.targets, args.device,
            args.batch_size, args.patience, args.steps_per_epoch, args.max_epochs)


if __name__ == "__main__":
    main()
