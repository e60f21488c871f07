"""Compact U-Net (legacy paper, Appendix B, scaled down to train on a CPU).

Contracting path: two 3x3 conv + batch norm + ReLU per level, 2x2 max pooling.  Expanding path:
2x upsampling followed by a 2x2 convolution (as a stride-2 transposed convolution) + BN + ReLU,
concatenation with the skip, two 3x3 conv + BN + ReLU.  Head: 3x3 conv + ReLU, then 1x1 conv to
the classes.  The same network, with landmark channels + background as classes, gives heatmaps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UNetSkeleton(nn.Module):
    """What every U-Net here shares: an encoder of ``levels`` blocks of ``base * 2**k`` channels
    with 2x2 max pooling, a decoder block per skip, a head; the input side must be divisible by
    ``2**(levels-1)``.  Subclasses give the blocks (``_block``), the upsampling (``_up``) and the head."""

    def __init__(self, in_channels: int, out_channels: int, base: int, levels: int):
        super().__init__()
        if levels < 2:
            raise ValueError("a U-Net needs at least 2 levels")
        self.hparams = {"in_channels": in_channels, "out_channels": out_channels, "base": base,
                        "levels": levels}
        self.widths = [base * 2**k for k in range(levels)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in self.widths:
            self.down.append(self._block(c, w))
            c = w

    def _block(self, c_in: int, c_out: int) -> nn.Module:
        raise NotImplementedError

    def _up(self, i: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2 ** (len(self.down) - 1)
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be divisible by {m}")
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i, (dec, skip) in enumerate(zip(self.dec, reversed(skips[:-1]))):
            x = dec(torch.cat([self._up(i, x, skip), skip], dim=1))
        return self.head(x)


class UNet(UNetSkeleton):
    """``levels`` resolution levels with ``base * 2**k`` channels; input side divisible by
    ``2**(levels-1)``.  Output: logits ``(B, out_channels, H, W)``."""

    def __init__(self, in_channels: int = 1, out_channels: int = 4, base: int = 16, levels: int = 4):
        super().__init__(in_channels, out_channels, base, levels)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        c = self.widths[-1]
        for w in reversed(self.widths[:-1]):
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(c, w, 2, stride=2, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)))
            self.dec.append(_block(2 * w, w))
            c = w
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, out_channels, 1))

    def _block(self, c_in: int, c_out: int) -> nn.Module:
        return _block(c_in, c_out)

    def _up(self, i: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.up[i](x)
