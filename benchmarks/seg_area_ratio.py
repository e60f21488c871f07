"""Generalisation check of ``seg_sax``: predicted / true area of myocardium and cavity on the
network grid, on training exams and on held-out test exams (a ratio far below 1 on the test
exams only means under-segmentation of unseen myocardium, i.e. too few training exams).

    PYTHONPATH=. python benchmarks/seg_area_ratio.py --data TRAIN_DATA [--models-dir DIR] \
        [--train-exams 12] [--test-exams 6] [--keep-exams /tmp/test_exams]

TRAIN_DATA is a ``cmr-atlas train data`` folder (its last exams are read); the test exams are the
held-out cohort of ``benchmarks/accuracy.py`` (seed 30001), labels rasterised from the truth
contours exactly as for training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import generated  # noqa: E402
from cmr_atlas.cine.training_data import segmentation_samples  # noqa: E402
from cmr_atlas.nets.samples import Samples  # noqa: E402
from cmr_atlas.nets.registry import card_grid, load_model  # noqa: E402
from cmr_atlas.core.vocab import CAVITY, MYO  # noqa: E402


def area_ratios(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 32]) for i in range(0, len(x), 32)]).argmax(1).numpy()
    return tuple(float((pred == c).sum() / max((labels == c).sum(), 1)) for c in (MYO, CAVITY))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a `cmr-atlas train data` folder")
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--train-exams", type=int, default=12)
    ap.add_argument("--test-exams", type=int, default=6)
    ap.add_argument("--seed", type=int, default=30001, help="test cohort seed")
    ap.add_argument("--keep-exams", help="folder of kept test exams (as in benchmarks/accuracy.py)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, card = load_model("seg_sax", a.models_dir, torch.device("cpu"))
    s = Samples.load(Path(a.data) / "seg.npz")
    idx = np.flatnonzero(s.exam >= s.exam.max() + 1 - a.train_exams)
    myo, cav = area_ratios(model, s.images[idx], s.labels[idx])
    print(f"training-data exams ({a.train_exams}, {len(idx)} images): myocardium {myo:.3f}, cavity {cav:.3f}")
    keep = Path(a.keep_exams) if a.keep_exams else None
    for k, (images, truth) in enumerate(generated(a.test_exams, a.seed, 2, 0.2, keep)):
        t = segmentation_samples(images, truth["contours"], card_grid(card), np.random.default_rng(0), extra_frames=0)
        myo, cav = area_ratios(model, t.images, t.labels)
        print(f"test exam {a.seed}-{k:04d} (ED+ES, {len(t)} images): myocardium {myo:.3f}, cavity {cav:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
