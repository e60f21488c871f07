"""Int8 graphs (nets.quantize): what they compute, when they are used, when they are refused (issue 12)."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from cmr_atlas.nets.onnx_export import onnx_bytes
from cmr_atlas.nets.registry import load_model, save_model
from cmr_atlas.nets.runtime import OnnxNet, load_net, resolve_precision, resolve_runtime
from cmr_atlas.nets.unet import UNet

ort = pytest.importorskip("onnxruntime")
from cmr_atlas.nets.quantize import int8_graph, quantize_graph, write_int8  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models"


def _blobs(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Whitened images of bright discs on noise: inputs with structure, as the networks see."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        r0, c0, rad = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(3, 7)]
        im = ((yy - r0) ** 2 + (xx - c0) ** 2 < rad ** 2) * 2.0 + rng.normal(0, 0.3, (size, size))
        out.append((im - im.mean()) / im.std())
    return np.asarray(out, np.float32)


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """A small U-Net saved in a models folder, with its int8 graph written beside it."""
    torch.manual_seed(0)
    mdir = tmp_path_factory.mktemp("models")
    save_model(UNet(1, 3, 8, 2), {"name": "m", "input": {"spacing_mm": 1.5, "size": 32}}, mdir)
    model, card = load_model("m", mdir)
    write_int8("m", mdir, card, quantize_graph(onnx_bytes(model, 32), _blobs(64)), {"images": 64})
    return mdir


def test_int8_graph_computes_the_float_network(small_net):
    model, card = load_model("m", small_net)
    net = OnnxNet(model, 32, 1, int8_graph("m", small_net, card))
    x = _blobs(16, seed=1)
    ref = torch.softmax(model(torch.from_numpy(x)[:, None]), 1).detach().numpy()
    got = torch.softmax(torch.from_numpy(net.run_batches(x, 8)), 1).numpy()
    assert net.int8
    assert np.abs(got - ref).max() < 0.1 and np.abs(got - ref).mean() < 0.01
    # the class of the pixels the float network decides most clearly (the half with the widest gap
    # between its top two probabilities): this untrained network's classes are near-ties everywhere,
    # and int8 rounding may flip the closest of them either way
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    clear = margin >= np.median(margin)
    assert (got.argmax(1) == ref.argmax(1))[clear].mean() > 0.98
    # integer convolutions, and the logits' convolution with its float weights (module docstring)
    import onnx

    g = onnx.load_from_string(int8_graph("m", small_net, card)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in g.node) > 5
    last = next(n for n in g.node if set(n.output) & {o.name for o in g.output})
    weights = {i.name: i for i in g.initializer}
    assert last.op_type == "Conv" and weights[last.input[1]].data_type == onnx.TensorProto.FLOAT


def test_int8_graph_of_other_weights_or_altered_is_refused(small_net, tmp_path, caplog):
    mdir = tmp_path / "m"
    mdir.mkdir()
    for f in small_net.iterdir():
        (mdir / f.name).write_bytes(f.read_bytes())
    _, card = load_model("m", mdir)
    assert int8_graph("m", mdir, card) is not None
    with caplog.at_level(logging.WARNING):
        assert int8_graph("m", mdir, {**card, "sha256": "0" * 64}) is None  # retrained weights
        (mdir / "m.int8.onnx").write_bytes((mdir / "m.int8.onnx").read_bytes() + b"x")
        assert int8_graph("m", mdir, card) is None
        (mdir / "m.int8.onnx").unlink()
        assert int8_graph("m", mdir, card) is None
    assert caplog.text.count("float runtime") == 3
    assert int8_graph("m", mdir, {k: v for k, v in card.items() if k != "int8"}) is None


def test_which_settings_run_the_int8_graph(small_net, tmp_path, monkeypatch):
    """precision int8, or auto with runtime auto on a CPU with VNNI, runs a network's int8 graph; an
    explicit runtime or float precision its float path; a network without one its float path too."""
    from cmr_atlas.nets import runtime

    monkeypatch.setattr(runtime, "cpu_has_int8_dot", lambda: True)
    cpu = torch.device("cpu")
    rt = resolve_runtime("auto", cpu, "int8")
    assert rt == resolve_runtime("auto", cpu, "auto")
    assert resolve_precision("int8", cpu) == resolve_precision("auto", cpu)

    def is_int8(precision, setting, mdir=small_net):
        net, _ = load_net("m", mdir, cpu, precision, resolve_runtime(setting, cpu, precision), runtime_setting=setting)
        return isinstance(net, OnnxNet) and net.int8

    assert is_int8("int8", "auto") and is_int8("int8", "onnxruntime") and is_int8("auto", "auto")
    assert not is_int8("auto", "torch") and not is_int8("auto", "onnxruntime")
    monkeypatch.setattr(runtime, "cpu_has_int8_dot", lambda: False)  # pre-VNNI x86: saturating kernels
    assert not is_int8("auto", "auto") and is_int8("int8", "auto")
    monkeypatch.setattr(runtime, "cpu_has_int8_dot", lambda: True)
    assert not is_int8("float32", "auto") and not is_int8("bfloat16", "auto")
    card = json.loads((small_net / "m.json").read_text())
    card.pop("int8")
    save_model(load_model("m", small_net)[0], card, tmp_path / "plain")
    assert not is_int8("int8", "auto", tmp_path / "plain")


def test_an_unloadable_int8_graph_falls_back_under_auto(small_net, tmp_path, monkeypatch, caplog):
    """A graph whose checksum matches but that ONNX Runtime cannot load (a newer opset, say): precision
    auto warns and runs the float network; an explicit int8 fails loudly."""
    from cmr_atlas.nets import quantize, runtime

    monkeypatch.setattr(runtime, "cpu_has_int8_dot", lambda: True)
    monkeypatch.setattr(quantize, "int8_graph", lambda *a: b"not an onnx graph")
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING):
        net, _ = load_net("m", small_net, cpu, "auto", "torch", runtime_setting="auto")
    assert not isinstance(net, OnnxNet) and "ONNX Runtime unusable" in caplog.text
    with pytest.raises(Exception):
        load_net("m", small_net, cpu, "int8", "torch", runtime_setting="auto")


def test_int8_dot_product_flags(tmp_path):
    from cmr_atlas.nets.runtime import cpu_has_int8_dot

    for i, (flags, has) in enumerate((("fpu sse avx2 avx512f avx512_vnni", True), ("fpu avx2 avx_vnni", True),
                                      ("fp asimd asimddp", True), ("fpu sse avx2 avx512f avx512bw", False))):
        path = tmp_path / f"cpuinfo{i}"  # one file per case: the probe is cached per path
        path.write_text(f"flags\t\t: {flags}\n")
        assert cpu_has_int8_dot(str(path)) is has, flags
    assert cpu_has_int8_dot(str(tmp_path / "none")) is False


def test_int8_is_refused_on_a_gpu():
    with pytest.raises(ValueError, match="int8 runs on the CPU"):
        resolve_precision("int8", torch.device("cuda"))


def test_shipped_int8_graphs_match_their_weights():
    """Every shipped card with an int8 entry names a graph made from its current weights."""
    cards = [json.loads(p.read_text()) for p in SHIPPED.glob("*.json")]
    with_int8 = [c["name"] for c in cards if "int8" in c]
    assert {"seg_sax", "lm_heatmap_lax", "lm_heatmap_sax"} <= set(with_int8)
    for name in with_int8:
        _, card = load_model(name, SHIPPED)
        assert int8_graph(name, SHIPPED, card) is not None, name


def test_models_quantize_cli_calibrates_on_the_training_cohort(tmp_path, capsys):
    """`cmr-atlas models quantize` end to end on a small U-Net whose card names a legacy training
    cohort: the graph is written, the card records it and its calibration, the runtime takes it."""
    from cmr_atlas.cli import main

    torch.manual_seed(0)
    card = {"name": "seg_sax", "views": ["sax"], "input": {"spacing_mm": 3.0, "size": 64},
            "training_data": {"parts": [{"cohort_seed": 910000, "mi_fraction": 0.2}]}}
    save_model(UNet(1, 4, 4, 2), card, tmp_path)
    assert main(["models", "quantize", "--models-dir", str(tmp_path), "--name", "seg_sax",
                 "--n-exams", "1", "--n-images", "16"]) == 0
    assert "seg_sax: wrote" in capsys.readouterr().out
    model, card = load_model("seg_sax", tmp_path)
    cal = card["int8"]["calibration"]
    assert cal["parts"] == [{"protocol": "mesa", "cohort_seed": 910000, "exam_indices": [0, 0], "images": 16,
                             "of": cal["parts"][0]["of"]}] and cal["parts"][0]["of"] > 16
    net = OnnxNet(model, 64, 1, int8_graph("seg_sax", tmp_path, card))
    assert net.run_batches(_blobs(3, size=64), 2).shape == (3, 4, 64, 64)


def test_the_cine_networks_to_quantise_are_those_inference_routes_and_all_have_their_graph():
    """`cmr-atlas models quantize` without --name takes each cine task's networks (routed ones too):
    every shipped one carries its int8 graph, and no other shipped network does."""
    from cmr_atlas.cine.quantize_models import cine_unets

    shipped = Path(__file__).resolve().parents[2] / "resources/models"
    names = cine_unets(shipped)
    assert {"seg_sax", "seg_sax_ssfp", "lm_heatmap_lax", "lm_heatmap_sax", "lm_heatmap_sax_ssfp"} <= set(names)
    with_graph = {p.stem for p in shipped.glob("*.json") if "int8" in json.loads(p.read_text())}
    assert set(names) == with_graph


def test_a_neighbour_slice_network_is_calibrated_and_run_on_its_channels(tmp_path):
    """A SAX landmark network whose card has ``input.neighbour_slices`` is calibrated on images
    that carry the neighbouring slices, and its int8 graph takes them."""
    from cmr_atlas.cine.quantize_models import calibration_images, quantize_model

    torch.manual_seed(0)
    card = {"name": "lm_heatmap_sax", "views": ["sax"], "input": {"spacing_mm": 3.0, "size": 64, "neighbour_slices": 1},
            "training_data": {"parts": [{"cohort_seed": 910000, "mi_fraction": 0.2}]}}
    x, _ = calibration_images(card, 1, 8)
    assert x.shape == (8, 3, 64, 64)
    save_model(UNet(3, 4, 4, 2), card, tmp_path)
    quantize_model("lm_heatmap_sax", tmp_path, n_exams=1, n_images=8)
    model, card = load_model("lm_heatmap_sax", tmp_path)
    net = OnnxNet(model, 64, 1, int8_graph("lm_heatmap_sax", tmp_path, card))
    assert net.run_batches(x[:3], 2).shape == (3, 4, 64, 64)
