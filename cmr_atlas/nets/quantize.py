"""Integer (int8) versions of the shipped U-Nets for CPU inference in ONNX Runtime.

A network's float32 ONNX graph (:func:`cmr_atlas.nets.onnx_export.onnx_bytes`) is statically
quantised by ONNX Runtime's tooling (``onnxruntime.quantization.quantize_static``): weights int8 per
output channel, activations uint8 with ranges calibrated on images of the network's own training
cohort, in the QDQ format, which ONNX Runtime's CPU provider fuses into integer convolutions
(AVX-512 VNNI, AVX2 elsewhere).  The last convolution (the logits) stays float32: softmax
probabilities and the heatmap peaks' sub-pixel centroids read small logit differences that an
8-bit output grid would round away.

The result is shipped beside the weights as ``<name>.int8.onnx`` and recorded in the card's
``int8`` entry (file, sha256, the sha256 of the weights it was made from, calibration images and
seeds); :func:`int8_graph` returns it only while those still match, so a retrained network never
runs with the integer graph of its predecessor.  Made by ``cmr-atlas models quantize``; the
accuracy check is ``benchmarks/accuracy.py --precision int8`` (figures in docs/models.md).
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cmr_atlas.nets.registry import sha256_file

log = logging.getLogger(__name__)

INT8_SUFFIX = ".int8.onnx"


def _output_convs(model) -> list[str]:
    """Names of the nodes that write a graph output (the logits' convolution)."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if set(n.output) & outputs]


def quantize_graph(float_onnx: bytes, calibration: np.ndarray, batch: int = 16) -> bytes:
    """The int8 QDQ graph of ``float_onnx`` (input ``image (B, C, n, n)``), activation ranges
    calibrated (min/max) on ``calibration (N, n, n)`` (or ``(N, C, n, n)``) preprocessed
    network-grid images."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cmr_atlas.nets.onnx_export import INPUT
    from cmr_atlas.nets.runtime import channel_batch

    x = channel_batch(calibration)
    if len(x) == 0:
        raise ValueError("quantisation needs calibration images")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{INPUT: x[i:i + batch]} for i in range(0, len(x), batch)])

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="cmr-quant-") as tmp:
        src, pre, out = (Path(tmp) / f for f in ("float.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(float_onnx)
        # graph clean-up (constant folding, shapes) before quantisation; the symbolic height and
        # width defeat ONNX Runtime's symbolic shape inference, which the U-Nets do not need
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        nodes_to_exclude=_output_convs(onnx.load(str(pre))))
        return out.read_bytes()


def write_int8(name: str, models_dir: str | Path, card: dict, graph: bytes, calibration: dict) -> Path:
    """Ship ``graph`` as ``<models_dir>/<name>.int8.onnx`` and record it in the card (the card file
    is rewritten with an ``int8`` entry; ``calibration`` describes its images)."""
    d = Path(models_dir)
    path = d / f"{name}{INT8_SUFFIX}"
    path.write_bytes(graph)
    card = {**card, "int8": {"file": path.name, "sha256": sha256_file(path), "weights_sha256": card["sha256"],
                             "format": "ONNX QDQ: weights int8 per channel, activations uint8 (min/max "
                                       "calibration), output convolution float32",
                             "calibration": calibration,
                             "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    (d / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def int8_graph(name: str, models_dir: str | Path, card: dict) -> bytes | None:
    """The shipped int8 graph of network ``name`` (already loaded: ``card``), or None where there is
    none or it was made from other weights or altered since (with a warning)."""
    entry = card.get("int8")
    if not entry:
        return None
    path = Path(models_dir) / entry["file"]
    if not path.is_file():
        log.warning("%s: card names int8 graph %s, which is missing; float runtime", name, path.name)
        return None
    if entry.get("weights_sha256") != card.get("sha256") or sha256_file(path) != entry.get("sha256"):
        log.warning("%s: int8 graph %s does not match the weights (re-run `cmr-atlas models quantize`); "
                    "float runtime", name, path.name)
        return None
    return path.read_bytes()
