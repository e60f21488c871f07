"""Residual U-Net of the perfusion segmentation (Xue et al., Radiology: AI 2020): every level a
residual block (two 3x3 convolutions with batch norm and leaky ReLU, plus a 1x1 projection on the
skip path), 2x2 max pooling down, bilinear upsampling + concatenation up.  The temporal frames of
a perfusion series are its input channels (2D+T as channels, as the authors' training recipe).
Scaled down (width, depth) to train and run on a couple of CPU cores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cmr_atlas.nets.unet import UNetSkeleton

NEGATIVE_SLOPE = 0.1


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResUNet(UNetSkeleton):
    """``levels`` resolution levels of ``base * 2**k`` channels; input side divisible by
    ``2**(levels-1)``.  Output: logits ``(B, out_channels, H, W)``."""

    def __init__(self, in_channels: int = 16, out_channels: int = 4, base: int = 16, levels: int = 4):
        super().__init__(in_channels, out_channels, base, levels)
        self.dec = nn.ModuleList()
        c = self.widths[-1]
        for w in reversed(self.widths[:-1]):
            self.dec.append(ResBlock(c + w, w))
            c = w
        self.head = nn.Conv2d(c, out_channels, 1)

    def _block(self, c_in: int, c_out: int) -> nn.Module:
        return ResBlock(c_in, c_out)

    def _up(self, i: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
