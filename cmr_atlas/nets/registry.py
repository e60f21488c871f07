"""Model files: ``<models_dir>/<name>.pt`` (a state_dict) + ``<name>.json`` (the model card).

The card records the architecture and its hyper-parameters, the input grid, the label or landmark
names, how it was trained (cohort, seeds, epochs) with its validation metrics, and the sha256 of
the weights file.  :func:`load_model` verifies the checksum before loading with
``torch.load(..., weights_only=True)``; a missing or altered file is a :class:`ModelFileError`
naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch
from torch import nn

from cmr_atlas.core.tables import atomic_write_bytes
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.resunet import ResUNet
from cmr_atlas.nets.stemi import StemiNet
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor

ARCHITECTURES = {"UNet": UNet, "VGGRegressor": VGGRegressor, "StemiNet": StemiNet, "ResUNet": ResUNet}


class ModelFileError(RuntimeError):
    """A model's weights or card is missing, unreadable, or does not match its checksum."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(card: dict) -> nn.Module:
    arch = card["architecture"]
    if arch["class"] not in ARCHITECTURES:
        raise ModelFileError(f"unknown architecture {arch['class']!r} in card {card.get('name')}")
    return ARCHITECTURES[arch["class"]](**arch["hparams"])


def save_model(model: nn.Module, card: dict, models_dir: str | Path) -> Path:
    """Write weights then the card (with the weights' sha256); returns the card path."""
    d = Path(models_dir)
    name = card["name"]
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    weights = atomic_write_bytes(d / f"{name}.pt", buf.getvalue())
    card = dict(card)
    card["architecture"] = {"class": type(model).__name__, "hparams": model.hparams}
    card["weights_file"] = weights.name
    card["sha256"] = sha256_file(weights)
    return atomic_write_bytes(d / f"{name}.json", (json.dumps(card, indent=2) + "\n").encode())


def load_card(name: str, models_dir: str | Path) -> dict:
    path = Path(models_dir) / f"{name}.json"
    if not path.is_file():
        raise ModelFileError(f"model card not found: {path} (train it with `cmr-atlas train` or "
                             f"restore resources/models)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model card {path} is not valid JSON: {exc}") from exc


def load_model(name: str, models_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """``(model in eval mode on device, card)`` after checking the weights' sha256."""
    card = load_card(name, models_dir)
    weights = Path(models_dir) / card.get("weights_file", f"{name}.pt")
    if not weights.is_file():
        raise ModelFileError(f"model weights not found: {weights}")
    digest = sha256_file(weights)
    if digest != card.get("sha256"):
        raise ModelFileError(f"checksum mismatch for {weights}: sha256 {digest[:12]}... but card "
                             f"{Path(models_dir) / (name + '.json')} says {str(card.get('sha256'))[:12]}...")
    model = build(card)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # corrupt file or architecture mismatch: name the file
        raise ModelFileError(f"cannot load weights {weights}: {exc}") from exc
    return model.to(device).eval(), card


def card_grid(card: dict) -> Grid:
    g = card["input"]
    return Grid(spacing_mm=float(g["spacing_mm"]), size=int(g["size"]))
