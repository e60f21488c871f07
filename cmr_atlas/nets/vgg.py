"""VGG-style landmark coordinate regression (legacy paper, Appendix A), scaled down for a CPU.

VGG16 stacks 3x3 convolutions in blocks separated by max pooling, then fully connected layers.
Here: ``len(widths)`` blocks of ``convs_per_block`` 3x3 conv + BN + ReLU, then two fully connected
layers (``hidden`` neurons, the paper's 2048 reduced) and a linear output of ``2 * n_points``
normalised coordinates (row, col in [-1, 1] over the network grid).  One network per view; the
cyclic transfer-learning schedule (:func:`cmr_atlas.nets.train.train_vgg_cyclic`) passes weights
from one view's network to the next, so all views share the output size.
"""

from __future__ import annotations

import torch
from torch import nn


class VGGRegressor(nn.Module):
    def __init__(self, n_points: int = 3, in_channels: int = 1, input_size: int = 128,
                 widths: tuple[int, ...] = (16, 32, 64, 128, 128), convs_per_block: int = 2,
                 hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.hparams = {"n_points": n_points, "in_channels": in_channels, "input_size": input_size,
                        "widths": list(widths), "convs_per_block": convs_per_block, "hidden": hidden,
                        "dropout": dropout}
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** len(widths)
        if side < 1:
            raise ValueError("input too small for this many pooling blocks")
        self.regressor = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 2 * n_points),
        )
        self.n_points = n_points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (row, col) per point: ``(B, n_points, 2)``."""
        return self.regressor(self.features(x)).view(-1, self.n_points, 2)


def to_normalised(rc: torch.Tensor, size: int) -> torch.Tensor:
    """Network pixel coordinates -> [-1, 1] (pixel centres 0 and size-1 at the ends)."""
    return rc * (2.0 / (size - 1)) - 1.0


def from_normalised(u: torch.Tensor, size: int) -> torch.Tensor:
    return (u + 1.0) * ((size - 1) / 2.0)
