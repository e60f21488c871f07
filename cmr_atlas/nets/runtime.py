"""Inference runtime shared by every pipeline's networks: the device, the numeric precision and
the batched forward pass (numpy images in, float32 CPU tensor out).

Precision (config ``inference.precision``): ``float32``, ``bfloat16``, or ``auto``, which takes
bfloat16 autocast where the hardware computes it natively (CUDA with bf16 support, else float16 on
CUDA; on the CPU only where the processor has AVX-512 BF16 or AMX units, which oneDNN uses) and
float32 elsewhere.  On this project's 2-core development CPU (AVX-512 BF16) bfloat16 autocast runs
the shipped U-Nets about 4x faster than float32 (``benchmarks/inference.py``); the accuracy check
of the change is ``benchmarks/accuracy.py --precision`` (figures in docs/models.md).
"""

from __future__ import annotations

import contextlib
import copy
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = ("auto", "float32", "bfloat16")
_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda`` (an error without CUDA)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but CUDA is not available")
    return torch.device(name)


@lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX) and oneDNN can use
    it; without those units oneDNN emulates bf16, which is slower than float32."""
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:  # not Linux: no cheap reliable probe, stay with float32
        return False
    native = " avx512_bf16" in flags or " amx_bf16" in flags
    return native and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``name`` on ``device`` (None = plain float32)."""
    if name not in PRECISIONS:
        raise ValueError(f"inference.precision must be one of {PRECISIONS}, not {name!r}")
    if device.type == "cuda":
        if name == "float32":
            return None
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if name == "bfloat16":
            raise RuntimeError("inference.precision: bfloat16 requested but this GPU has no bf16 support")
        return torch.float16
    if name == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return _DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; plain float32 when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def fuse_conv_bn(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of an eval-mode ``model`` whose (transposed) convolutions followed by batch norm in
    an ``nn.Sequential`` carry the batch norm in their weights and bias (the norm becomes an
    identity): the same function up to rounding, one pass over the activations fewer per layer."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and isinstance(bn, torch.nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, torch.nn.ConvTranspose2d))
                seq[i + 1] = torch.nn.Identity()
    return model


def prepare_model(model: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``model``: eval mode, batch norm fused into the convolutions
    (:func:`fuse_conv_bn`), channels-last weights, which oneDNN's convolutions (CPU) and cuDNN's
    under autocast (GPU) run fastest on.  The shipped U-Net on this project's CPU (2 threads,
    bfloat16 autocast, batch 32): 5.6 ms per 128 x 128 image as loaded, 3.1 ms channels-last,
    2.5 ms fused and channels-last (``benchmarks/inference.py``)."""
    return fuse_conv_bn(model).to(memory_format=torch.channels_last)


def forward(model: torch.nn.Module, x: np.ndarray, device: torch.device, batch: int,
            dtype: torch.dtype | None) -> torch.Tensor:
    """Run ``x (N, n, n)`` through ``model`` in batches of ``batch`` single-channel images on
    ``device`` under :func:`autocast` to ``dtype``; returns the float32 output on the CPU,
    contiguous (``torch.zeros(0)`` for no images).  Inputs go in channels-last memory format
    (see :func:`prepare_model`)."""
    outs = []
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32))[:, None]
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            outs.append(model(xb).float().cpu())
    return torch.cat(outs).contiguous() if outs else torch.zeros(0)
