"""ONNX export of the shipped networks: outputs match PyTorch's (issue 16)."""

import json
from pathlib import Path

import pytest
import torch

from cmr_atlas.cli import main
from cmr_atlas.nets.onnx_export import check_export, export_model, model_names
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.unet import UNet

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.mark.parametrize("name", ["lm_heatmap_lax", "lm_vgg_sax"])  # one of each architecture
def test_exported_shipped_network_matches_pytorch(tmp_path, name):
    path = export_model(name, SHIPPED, tmp_path)
    assert check_export(name, SHIPPED, path, batch=2) < 1e-4
    card = json.loads((tmp_path / f"{name}.json").read_text())
    assert card["onnx"]["file"] == f"{name}.onnx" and card["sequences"] and card["views"]


def test_check_export_sees_a_different_network(tmp_path):
    """The comparison can fail: an export of other weights under the same name differs."""
    mdir = tmp_path / "models"
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_model(UNet(1, 3, 4, 2), {"name": "m", "input": {"spacing_mm": 1.5, "size": 32}}, mdir / str(seed))
    path = export_model("m", mdir / "0", tmp_path / "onnx")
    assert check_export("m", mdir / "0", path) < 1e-4
    assert check_export("m", mdir / "1", path) > 1e-3


def test_models_cli_exports_and_checks(tmp_path, capsys):
    assert main(["models", "export", "--onnx", str(tmp_path), "--models-dir", str(SHIPPED), "--name", "seg_sax",
                 "--check"]) == 0
    assert "seg_sax: max |ONNX - PyTorch|" in capsys.readouterr().out
    assert (tmp_path / "seg_sax.onnx").is_file()
    assert main(["models", "list", "--models-dir", str(SHIPPED)]) == 0
    assert set(model_names(SHIPPED)) >= {"seg_sax", "lm_heatmap_lax", "lm_heatmap_sax"}
