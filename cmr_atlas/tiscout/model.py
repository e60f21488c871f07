"""The shipped TI-selection networks: files, loading, and a scout's window probabilities.

``ti_default`` (small STEMI-Net, the pipeline's model) and ``ti_stemi`` (the paper's architecture,
scaled for CPUs; selectable with ``tiscout.model``) live in ``resources/models`` with model cards
(:mod:`cmr_atlas.nets.registry`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cmr_atlas.nets import registry
from cmr_atlas.nets.runtime import cpu_has_native_bf16, fuse_conv_bn
from cmr_atlas.nets.stemi import StemiNet
from cmr_atlas.tiscout import windows as W
from cmr_atlas.tiscout.preprocess import FOV_MM, network_frames

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"


def save_ti_model(model: StemiNet, name: str, models_dir: str | Path, arch: str, cfg, info: dict,
                  n_scouts: int) -> Path:
    """Write weights + model card (architecture, input grid, labels, seeds, training history)."""
    from dataclasses import asdict

    from cmr_atlas.tiscout import trainset  # here: it pulls in the synthetic cohort (0.7 s per tiscout job)

    card = {
        "name": name, "task": "TI-scout window classification: P(acceptable) of a 4-frame window "
                              "(t-2, t-1, t0, t+1) ordered by inversion time (Bahrami et al. 2019)",
        "arch_name": arch,
        "input": {"fov_mm": FOV_MM, "size": model.hparams["input_size"], "spacing_mm": FOV_MM / model.hparams["input_size"],
                  "scaling": "divided by the 99th percentile of the cropped series"},
        "labels": "acceptable = window t0 at or after observer 1's null frame (synthetic clinical protocol)",
        "sequences": ["ti_scout"], "views": ["sax", "lax_4ch"],
        "training": {"cohort": f"synthetic clinical TI scouts, seed {trainset.TRAIN_SEED} (10 % amyloid-like)",
                     "optimiser": "Adam; learning rate cosine-decayed over the epochs (config: lr, lr_final, weight_decay)",
                     "n_scouts": n_scouts, "benchmark_seed": trainset.BENCHMARK_SEED,
                     "test_fixture_seed": 86, "config": asdict(cfg), **info},
    }
    return registry.save_model(model, card, models_dir)


@lru_cache(maxsize=4)
def load_ti_model(name: str = "ti_default", models_dir: str | Path = DEFAULT_MODELS_DIR) -> tuple[StemiNet, dict]:
    """The model in eval mode with batch norm folded in, and its card (checksum verified)."""
    model, card = registry.load_model(name, models_dir)
    return fuse_conv_bn(model), card


def window_probabilities(model: StemiNet, card: dict, frames: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """P(acceptable) of every window of one scout ordered by inversion time, ``frames (T, R, C)``."""
    x = network_frames(frames, spacing_mm, int(card["input"]["size"]), float(card["input"]["fov_mm"]))
    w = torch.from_numpy(np.ascontiguousarray(W.windows(x), dtype=np.float32))
    dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        return torch.sigmoid(model(w).float()).numpy()
