"""Write tiny untrained models (random weights, valid cards) so that the workflow runs end to end
without the shipped weights: for workflow plumbing tests only (outputs are not meaningful).

    python tests/slurm/tiny_models.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.unet import UNet


def write_tiny_models(models_dir: str | Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)  # same bytes every time: runs compare equal
    grid = Grid(spacing_mm=2.0, size=64)
    for name in ("seg_sax", "lm_heatmap_lax", "lm_heatmap_sax"):
        save_model(UNet(1, 4, 4, 2), {"name": name, "input": grid.to_dict(), "note": "untrained test model"},
                   models_dir)
    return Path(models_dir)


if __name__ == "__main__":
    print(write_tiny_models(sys.argv[1]))
