"""Export of the shipped networks to ONNX, for scanner-side or viewer runtimes.

Each model of a models folder (every ``<name>.json`` card with its weights) becomes
``<out>/<name>.onnx``: input ``image`` ``(batch, 1, n, n)`` float32 on the card's grid (the
preprocessing of :mod:`cmr_atlas.nets.preprocess` is the caller's), output ``output``: logits
``(batch, K, n, n)`` of a U-Net (softmax over K gives the class or heatmap probabilities) or the
normalised coordinates ``(batch, 2K)`` of a VGG regressor.  The card is copied next to it with an
``onnx`` entry (file, sha256, opset, input and output names).  :func:`check_export` runs an
exported file with onnxruntime and compares it with PyTorch.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from cmr_atlas.nets.registry import card_grid, load_model, sha256_file
from cmr_atlas.nets.unet import UNetSkeleton

OPSET = 17
INPUT, OUTPUT = "image", "output"


def model_names(models_dir: str | Path) -> list[str]:
    """Names of the models in ``models_dir`` (cards with a weights file beside them)."""
    d = Path(models_dir)
    return sorted(p.stem for p in d.glob("*.json") if (d / f"{p.stem}.pt").is_file())


def dynamic_axes(model: torch.nn.Module) -> dict[str, dict[int, str]]:
    """The symbolic axes of ``model``'s graph: the batch always; height and width too for the
    fully convolutional U-Nets, so that inference may run them on a crop of the grid (the
    regressors' dense head fixes their size)."""
    axes = {0: "batch", 2: "height", 3: "width"} if isinstance(model, UNetSkeleton) else {0: "batch"}
    return {INPUT: axes, OUTPUT: dict(axes)}


def onnx_bytes(model: torch.nn.Module, n: int) -> bytes:
    """The ONNX graph of an eval-mode ``model`` on ``(batch, C, n, n)`` inputs (``C``: its
    ``hparams['in_channels']``, 1 without; symbolic axes: :func:`dynamic_axes`)."""
    buf = io.BytesIO()
    in_channels = int(getattr(model, "hparams", {}).get("in_channels", 1))
    with warnings.catch_warnings():
        # the U-Net's pad-to-multiple check is traced as a constant: right for the fixed grid
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # the TorchScript exporter: exact for these static graphs, no onnxscript dependency
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, in_channels, n, n),), buf, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes=dynamic_axes(model), opset_version=OPSET,
                          dynamo=False)
    return buf.getvalue()


def export_model(name: str, models_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/<name>.onnx`` and its card; returns the ONNX path."""
    model, card = load_model(name, models_dir)
    n = card_grid(card).size
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.onnx"
    path.write_bytes(onnx_bytes(model, n))
    card = {**card, "onnx": {"file": path.name, "sha256": sha256_file(path), "opset": OPSET,
                             "input": f"{INPUT} (batch, 1, {n}, {n}) float32, preprocessed on the card's grid",
                             "output": OUTPUT}}
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def export_all(models_dir: str | Path, out_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    return [export_model(n, models_dir, out_dir) for n in (names or model_names(models_dir))]


def check_export(name: str, models_dir: str | Path, onnx_path: str | Path, batch: int = 3,
                 seed: int = 0) -> float:
    """Largest absolute difference between PyTorch's and onnxruntime's outputs of model ``name``
    on ``batch`` random whitened images."""
    import onnxruntime as ort

    model, card = load_model(name, models_dir)
    n = card_grid(card).size
    x = np.random.default_rng(seed).standard_normal((batch, 1, n, n)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {INPUT: x})[0]
    if got.shape != ref.shape:
        raise AssertionError(f"{name}: ONNX output shape {got.shape}, PyTorch {ref.shape}")
    return float(np.abs(got - ref).max())
