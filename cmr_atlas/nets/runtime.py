"""Inference runtime shared by every pipeline's networks: the device, the autocast choice and the
batched forward pass (numpy images in, float32 CPU tensor out)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda`` (an error without CUDA)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but CUDA is not available")
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (bf16 where supported, else fp16); plain float32 on the CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def forward(model: torch.nn.Module, x: np.ndarray, device: torch.device, batch: int) -> torch.Tensor:
    """Run ``x (N, n, n)`` through ``model`` in batches of ``batch`` single-channel images on
    ``device``; returns the float32 output on the CPU (``torch.zeros(0)`` for no images)."""
    outs = []
    with torch.inference_mode(), autocast(device):
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32))[:, None]
            outs.append(model(xb.to(device)).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)
