"""The ONNX Runtime path of :mod:`cmr_atlas.nets.runtime`: which runtime a config gets, the same
function as PyTorch float32, and the fallback to PyTorch when the export fails (issue 12)."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
import torch

from cmr_atlas.nets import runtime
from cmr_atlas.nets.runtime import OnnxNet, forward, inference_model, resolve_runtime
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor
from tests.nets.test_runtime_preprocess import _trained_like

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path, monkeypatch):
    """A fresh ONNX cache folder per test (not the user's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "cmr-atlas" / "onnx"


@pytest.mark.parametrize("native_bf16", [True, False])
def test_runtime_choice(native_bf16, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda *a: native_bf16)
    # auto: PyTorch where it runs bfloat16 natively (faster), ONNX Runtime where it would run float32
    assert resolve_runtime("auto", CPU, "auto") == ("torch" if native_bf16 else "onnxruntime")
    assert resolve_runtime("auto", CPU, "float32") == "onnxruntime"
    assert resolve_runtime("auto", CPU, "bfloat16") == "torch"  # ONNX Runtime's CPU provider: float32 only
    assert resolve_runtime("auto", CUDA, "auto") == "torch"
    assert resolve_runtime("torch", CPU, "auto") == "torch"
    with pytest.raises(ValueError, match="float32 only"):
        resolve_runtime("onnxruntime", CPU, "bfloat16")
    with pytest.raises(ValueError, match="float32 only"):
        resolve_runtime("onnxruntime", CUDA, "float32")
    with pytest.raises(ValueError, match="must be one of"):
        resolve_runtime("openvino", CPU, "auto")


def test_without_onnxruntime_auto_is_torch_and_an_explicit_request_an_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda *a: False)
    assert resolve_runtime("auto", CPU, "auto") == "torch"
    with pytest.raises(RuntimeError, match="not installed"):
        resolve_runtime("onnxruntime", CPU, "float32")


@pytest.mark.parametrize("make", [lambda: UNet(1, 4, 8, 3), lambda: VGGRegressor(3, input_size=64, widths=(8, 8, 16))])
def test_onnx_runtime_computes_pytorchs_float32_function(make):
    torch.manual_seed(0)
    model = _trained_like(make())
    x = np.random.default_rng(0).normal(size=(5, 64, 64)).astype(np.float32)
    net = inference_model(model, 64, "onnxruntime", strict=True)
    assert isinstance(net, OnnxNet)
    ref = forward(model, x, CPU, 2, None)
    out = forward(net, x, CPU, 2, None)  # batches of 2: the last one shorter
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    other = forward(inference_model(_trained_like(make()), 64, "onnxruntime", strict=True), x, CPU, 2, None)
    assert (other - ref).abs().max() > 1e-2  # the comparison can fail: other weights differ
    assert forward(net, x[:0], CPU, 2, None).numel() == 0


def test_failed_export_falls_back_to_pytorch_unless_asked_for(monkeypatch, caplog):
    from cmr_atlas.nets import onnx_export

    def broken(model, n):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_export, "onnx_bytes", broken)
    model = UNet(1, 4, 8, 3).eval()
    with caplog.at_level(logging.WARNING, logger="cmr_atlas.nets.runtime"):
        net = inference_model(model, 64, "onnxruntime")
    assert isinstance(net, torch.nn.Module) and "exporter broke" in caplog.text
    with pytest.raises(RuntimeError, match="exporter broke"):
        inference_model(model, 64, "onnxruntime", strict=True)


def test_exports_are_cached_by_weights(onnx_cache, monkeypatch):
    """A second job loading the same network reads the cached export (no exporter); other weights
    get their own file."""
    from cmr_atlas.nets import onnx_export

    torch.manual_seed(0)
    model = _trained_like(UNet(1, 4, 8, 3))
    x = np.random.default_rng(1).normal(size=(3, 64, 64)).astype(np.float32)
    first = forward(inference_model(model, 64, "onnxruntime", strict=True), x, CPU, 2, None)
    assert len(list(onnx_cache.glob("*.onnx"))) == 1

    def broken(model, n):
        raise RuntimeError("exporter called")

    monkeypatch.setattr(onnx_export, "onnx_bytes", broken)
    again = forward(inference_model(model, 64, "onnxruntime", strict=True), x, CPU, 2, None)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="exporter called"):  # other weights: not in the cache
        inference_model(_trained_like(UNet(1, 4, 8, 3)), 64, "onnxruntime", strict=True)
