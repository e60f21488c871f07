"""STEMI-Net (Bahrami et al., MRM 2019, section 2.4) and its two component networks, as one
configurable module: a window of 4 consecutive TI-scout frames in, the logit of "acceptable" out.

- ``branches="vgg"``: the paper's 4-channel VGG19 (frames as channels): 5 blocks of 2, 2, 4, 4, 4
  convolutions, kernel 21 in the first block and 3 in the rest, max pooling between blocks, then a
  dense layer to ``features`` (the paper's 1024).
- ``branches="lstm"``: the temporal network: three bidirectional convolutional LSTM layers (16
  filters, kernel 3, sequences returned) over the 4 frames, then a dense layer to ``features``.
- ``branches="both"``: STEMI-Net: both feature vectors concatenated, two dense layers with dropout
  0.5, trained with binary cross-entropy.

Scaled for CPUs (documented in docs/tiscout.md): ``widths`` and ``features`` are hyper-parameters
(the paper's 64..512 channels and 1024 features are the defaults' multiples), batch norm after each
convolution (folded into the weights at inference), and the ConvLSTM runs on the frames average-
pooled by ``lstm_pool``.  The same class with small widths and a 32-pixel grid is the shipped
default (:mod:`cmr_atlas.tiscout.model`).
"""

from __future__ import annotations

import torch
from torch import nn


BRANCHES = ("vgg", "lstm", "both")
VGG19_CONVS = (2, 2, 4, 4, 4)


class ConvLSTMCell(nn.Module):
    def __init__(self, in_ch: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_ch + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class BiConvLSTM(nn.Module):
    """One bidirectional ConvLSTM layer: ``(B, T, C, H, W) -> (B, T, 2 hidden, H, W)``."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.fwd, self.bwd = ConvLSTMCell(in_ch, hidden, kernel), ConvLSTMCell(in_ch, hidden, kernel)

    def _run(self, cell: ConvLSTMCell, x: torch.Tensor, order) -> list[torch.Tensor]:
        b, _, _, hh, ww = x.shape
        h = x.new_zeros(b, cell.hidden, hh, ww)
        state = (h, h)
        out = [None] * x.shape[1]
        for t in order:
            state = cell(x[:, t], state)
            out[t] = state[0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        f = self._run(self.fwd, x, range(t))
        b = self._run(self.bwd, x, range(t - 1, -1, -1))
        return torch.stack([torch.cat([f[k], b[k]], dim=1) for k in range(t)], dim=1)


def _vgg(window: int, widths, convs, first_kernel: int) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    c = window
    for block, (w, n) in enumerate(zip(widths, convs)):
        k = first_kernel if block == 0 else 3
        for _ in range(n):
            layers += [nn.Conv2d(c, w, k, padding=k // 2, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers), c


class StemiNet(nn.Module):
    def __init__(self, branches: str = "both", input_size: int = 64, window: int = 4,
                 widths: tuple[int, ...] = (8, 16, 32, 64, 64), convs: tuple[int, ...] = VGG19_CONVS,
                 first_kernel: int = 21, lstm_filters: int = 16, lstm_layers: int = 3, lstm_pool: int = 4,
                 features: int = 256, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {BRANCHES}, not {branches!r}")
        if len(widths) != len(convs):
            raise ValueError("one convolution count per VGG block")
        self.hparams = {"branches": branches, "input_size": input_size, "window": window, "widths": list(widths),
                        "convs": list(convs), "first_kernel": first_kernel, "lstm_filters": lstm_filters,
                        "lstm_layers": lstm_layers, "lstm_pool": lstm_pool, "features": features,
                        "hidden": hidden, "dropout": dropout}
        n_feat = 0
        if branches in ("vgg", "both"):
            self.vgg, c = _vgg(window, widths, convs, first_kernel)
            side = input_size // 2 ** len(widths)
            if side < 1:
                raise ValueError("input too small for this many pooling blocks")
            self.vgg_out = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, features), nn.ReLU(inplace=True))
            n_feat += features
        if branches in ("lstm", "both"):
            self.pool = nn.AvgPool2d(lstm_pool)
            chans = [1] + [2 * lstm_filters] * lstm_layers
            self.lstm = nn.ModuleList(BiConvLSTM(chans[i], lstm_filters) for i in range(lstm_layers))
            side = input_size // lstm_pool // 4
            self.lstm_out = nn.Sequential(nn.Flatten(), nn.Linear(window * 2 * lstm_filters * side * side, features),
                                          nn.ReLU(inplace=True))
            self.lstm_reduce = nn.MaxPool2d(4)
            n_feat += features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_feat, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated feature vector of ``x (B, window, H, W)``."""
        parts = []
        if hasattr(self, "vgg"):
            parts.append(self.vgg_out(self.vgg(x)))
        if hasattr(self, "lstm"):
            b, t, hh, ww = x.shape
            s = self.pool(x.reshape(b * t, 1, hh, ww))
            s = s.reshape(b, t, 1, *s.shape[-2:])
            for layer in self.lstm:
                s = layer(s)
            s = self.lstm_reduce(s.flatten(0, 1)).reshape(b, -1)
            parts.append(self.lstm_out(s))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of "acceptable" per window: ``(B,)``."""
        return self.head(self.features(x))[:, 0]

