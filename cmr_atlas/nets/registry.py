"""Model files: ``<models_dir>/<name>.pt`` (a state_dict) + ``<name>.json`` (the model card).

The card records the architecture and its hyper-parameters, the input grid, the label or landmark
names, how it was trained (cohort, seeds, epochs) with its validation metrics, and the sha256 of
the weights file.  :func:`load_model` verifies the checksum before loading with
``torch.load(..., weights_only=True)``; a missing or altered file is a :class:`ModelFileError`
naming the file.

Routing by sequence: a card's ``serves`` (default: its name) names the task a network does and its
``sequences`` which acquisition contrasts it was trained on.  :func:`routes` maps, for one task,
each sequence to the network whose card lists it (e.g. task ``seg_sax``: ``cine_gre`` ->
``seg_sax``, ``cine_ssfp`` -> ``seg_sax_ssfp``; a routed network wins a sequence its task's
default lists too); the network named after the task is the default for series of an unknown
sequence.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cmr_atlas.core.tables import atomic_write_bytes
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.resunet import ResUNet
from cmr_atlas.nets.stemi import StemiNet
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor

log = logging.getLogger(__name__)

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
    return Grid.from_dict(card["input"])


def card_sequences(card: dict) -> list[str]:
    """The sequences a network was trained on (cards written before the clinical protocol: the
    legacy GRE cine)."""
    return list(card.get("sequences", ["cine_gre"]))


@dataclass
class Routes:
    """Which network of ``task`` serves which sequence (:func:`routes`)."""

    task: str
    default: str  # the network named after the task: series of a sequence no card lists
    by_sequence: dict[str, str]
    _warned: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        """Every network of the task, the default first."""
        return list(dict.fromkeys([self.default, *self.by_sequence.values()]))

    def pick(self, sequence: str | None) -> str:
        """The network for a series of ``sequence``; the default where it is not known (None) or
        no network was trained on it (logged once per sequence: its results come from a network
        that has not seen that contrast)."""
        if sequence is None:
            return self.default
        name = self.by_sequence.get(sequence)
        if name is None:
            if sequence not in self._warned:
                self._warned.add(sequence)
                log.warning("no %s network trained on %s series (networks: %s): using %s", self.task,
                            sequence, self.by_sequence or "none", self.default)
            return self.default
        return name


def routes(task: str, models_dir: str | Path) -> Routes:
    """The networks in ``models_dir`` whose card's ``serves`` (default: the card's name) is ``task``,
    by the sequences their cards list; the network named ``task`` must exist (it is the default).
    A routed network (serving ``task`` under another name) takes the sequences its card lists, also
    where the default's card lists them too (the default was trained on them as well, and serves
    the rest); two routed networks may not list the same sequence (:class:`ModelFileError`)."""
    default_card = load_card(task, models_dir)  # the default: missing -> ModelFileError naming it
    by_sequence: dict[str, str] = {}
    for path in sorted(Path(models_dir).glob("*.json")):
        if path.stem == task:
            continue
        card = load_card(path.stem, models_dir)
        if card.get("serves", card.get("name", path.stem)) != task:
            continue
        for q in card_sequences(card):
            if q in by_sequence:
                raise ModelFileError(f"{models_dir}: networks {by_sequence[q]} and {path.stem} of task {task} "
                                     f"both list sequence {q}; keep one (a model card's `sequences`)")
            by_sequence[q] = path.stem
    for q in card_sequences(default_card):
        by_sequence.setdefault(q, task)
    return Routes(task, task, dict(sorted(by_sequence.items())))
