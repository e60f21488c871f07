"""Training of the perfusion segmentation network on synthetic clinical exams.

Samples: every slice of every stress and rest series of exams ``(seed, index)`` generated in memory
(:mod:`cmr_atlas.perfusion.synthetic`), motion-corrected by the pipeline's own
:func:`~cmr_atlas.perfusion.motion.correct_series`, turned into network inputs by
:func:`~cmr_atlas.perfusion.segment.net_input`; labels: the generator's class maps at the heart's
median position, resampled (nearest) to the same grid.  Training seeds (920000+) are disjoint from
every test cohort (tests 86, benchmarks 880xxx).

    python -m cmr_atlas.perfusion.train samples --seed 920000 --n 90 --out samples.npz
    python -m cmr_atlas.perfusion.train fit samples.npz --minutes 20 --models-dir resources/models
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from cmr_atlas.nets.augment import AugmentConfig, augment_batch
from cmr_atlas.nets.losses import segmentation_loss
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.resunet import ResUNet
from cmr_atlas.nets.runtime import autocast, cpu_has_native_bf16
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
    labels: np.ndarray  # (M, n, n) int8
    exam: np.ndarray  # (M,)
    exam_ids: list[str]
    points: None = None

    def __len__(self) -> int:
        return len(self.labels)


def exam_samples(ex: synthetic.SyntheticPerfusion) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Network inputs and grid labels of every slice of one synthetic exam."""
    xs, ys = [], []
    for p in prepare.prepare_exam(ex.series):
        if not p.ok:
            continue
        sp = tuple(float(v) for v in p.series.planes[0].pixel_spacing_mm)
        near = motion.series_heart_centre([p.frames(k) for k in range(len(p.order))], p.n_pd, float(np.mean(sp)))
        for k in range(len(p.order)):
            mc = motion.correct_series(p.frames(k), p.n_pd, float(np.mean(sp)), near_rc=near)
            xs.append(segment.net_input(mc.frames[p.n_pd:], mc.centre_rc, sp, {"input": INPUT}).astype(np.float16))
            si = [s for s in sorted({key[1] for key in ex.labels})][k]
            coords = segment.grid_coords(mc.centre_rc, sp, INPUT["spacing_mm"], INPUT["size"])
            ys.append(ndimage.map_coordinates(ex.labels[(p.condition, si)], coords, order=0, cval=0).astype(np.int8))
    return xs, ys


def build_samples(seed: int, n: int, out: str) -> None:
    xs, ys, exam, ids = [], [], [], []
    t0 = time.monotonic()
    for i in range(n):
        ex = synthetic.generate(seed, i, observers=0)
        x, y = exam_samples(ex)
        xs += x
        ys += y
        exam += [i] * len(x)
        ids.append(ex.exam_id)
        print(f"exam {i}: {len(x)} slices, {time.monotonic() - t0:.0f} s", flush=True)
        if (i + 1) % 10 == 0 or i == n - 1:  # checkpoint: a cut run still leaves samples
            np.savez(out, images=np.stack(xs), labels=np.stack(ys), exam=np.array(exam), exam_ids=np.array(ids),
                     seed=seed)


def fit(samples_path: str, minutes: float, models_dir: str, base: int, seed: int) -> None:
    z = np.load(samples_path)
    s = Samples(z["images"], z["labels"], z["exam"], list(z["exam_ids"]))
    cfg = TrainConfig(max_epochs=200, batch_size=16, lr=1e-3, patience=12, max_seconds=minutes * 60, seed=seed,
                      threads=2, steps_per_epoch=25, max_val_images=200)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = ResUNet(s.images.shape[1], len(segment.CLASSES), base, 4)
    tr, va, info = _split(s, cfg, rng)
    x_all = torch.from_numpy(s.images.astype(np.float32))
    y_all = torch.from_numpy(s.labels.astype(np.int64))
    dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    dev = torch.device("cpu")

    def step(idx):
        i = tr[idx]
        x, y, _ = augment_batch(rng, x_all[i], AUG, labels=y_all[i])
        with autocast(dev, dtype):
            logits = model(x)
        return segmentation_loss(logits.float(), y, 1.0, [1, 2, 3])

    def val():
        with autocast(dev, dtype):
            logits = torch.cat([model(x_all[va[b:b + 32]]) for b in range(0, len(va), 32)]).float()
        loss = float(segmentation_loss(logits, y_all[va], 1.0, [1, 2, 3]))
        pred, truth = logits.argmax(1).numpy(), y_all[va].numpy()
        return loss, {f"dice_{c}": mean_dice(pred, truth, k) for k, c in enumerate(segment.CLASSES) if k}

    report = _fit(model, step, val, len(tr), cfg, rng, "perf_seg")
    report.update(info, train_config=cfg.to_dict(), augmentation=AUG.to_dict(),
                  precision="bfloat16 autocast" if dtype else "float32")
    card = {"name": segment.MODEL_NAME, "description": "perfusion 2D+T residual U-Net: " + ", ".join(segment.CLASSES),
            "classes": list(segment.CLASSES), "input": INPUT,
            "training_data": {"source": "synthetic clinical exams in memory (cmr_atlas.perfusion.synthetic)",
                              "cohort_seeds": [int(x) for x in np.atleast_1d(z["seed"])],
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
    a.add_argument("--out", required=True)
    b = sub.add_parser("fit")
    b.add_argument("samples")
    b.add_argument("--minutes", type=float, default=20.0)
    b.add_argument("--models-dir", required=True, help="where the weights and card go (e.g. resources/models)")
    b.add_argument("--base", type=int, default=16)
    b.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.cmd == "samples":
        build_samples(args.seed, args.n, args.out)
    else:
        fit(args.samples, args.minutes, args.models_dir, args.base, args.seed)


if __name__ == "__main__":
    main()
