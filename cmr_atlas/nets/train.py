"""Generic training loops: a segmentation U-Net, a heatmap U-Net and VGG coordinate regressors
with the legacy paper's cyclic transfer learning.  Exam-wise train/validation split, early stopping
on the validation loss, a wall-clock budget, deterministic given the seed (torch and numpy
generators).

The loops know no pipeline: a pipeline's training module passes its samples (anything shaped like
:class:`ExamSamples`), its label classes and, for heatmaps, how targets are built and predictions
are decoded."""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Protocol

import numpy as np
import torch
from torch import nn

from cmr_atlas.nets.augment import LANDMARK_AUG, SEGMENTATION_AUG, AugmentConfig, augment_batch
from cmr_atlas.nets.losses import coordinate_loss, heatmap_loss, segmentation_loss
from cmr_atlas.nets.runtime import channel_batch
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor, from_normalised, to_normalised

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    max_epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    patience: int = 6            # epochs without validation improvement before stopping
    max_seconds: float = 1200.0  # wall-clock budget for this model
    val_fraction: float = 0.15
    seed: int = 0
    threads: int = 1
    steps_per_epoch: int | None = None  # None = one pass over the training images
    max_val_images: int | None = 256     # fixed random subset of the validation exams' images
    bf16_autocast: bool = False  # training steps under CPU bfloat16 autocast (validation stays float32)
    checkpoint_path: str | None = None  # the best weights so far are saved here at every improvement

    def to_dict(self) -> dict:
        return asdict(self)


def sampling_probabilities(groups: np.ndarray, shares: list[float] | None) -> np.ndarray | None:
    """Per-sample drawing probabilities that give group ``g`` (``groups (M,)`` int, e.g. the data
    folder) the share ``shares[g]`` of the training batches, whatever its size; ``None`` without
    ``shares`` (uniform over samples)."""
    if shares is None:
        return None
    groups = np.asarray(groups)
    if len(shares) <= int(groups.max()) or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"need one non-negative share per group (groups 0..{int(groups.max())}), got {shares}")
    counts = np.bincount(groups, minlength=len(shares)).astype(float)
    p = np.asarray(shares, float)[groups] / np.maximum(counts[groups], 1)
    return p / p.sum()


def with_view_weights(p: np.ndarray | None, groups: np.ndarray, views: np.ndarray,
                      weights: dict[int, float] | None) -> np.ndarray | None:
    """Drawing probabilities in which a sample of view ``v`` (``views (M,)`` codes) weighs
    ``weights[v]`` times as much as before (a view not named: 1) *within its group* (``groups``,
    e.g. the data folder), so each group keeps its share of the draws (``p``, e.g.
    :func:`sampling_probabilities`; uniform when None); ``p`` unchanged without ``weights``."""
    if not weights:
        return p
    if min(weights.values()) <= 0:
        raise ValueError(f"view weights are positive, got {weights}")
    groups, views = np.asarray(groups), np.asarray(views)
    base = np.full(len(views), 1.0 / len(views)) if p is None else np.asarray(p, float)
    out = base * np.array([weights.get(int(v), 1.0) for v in views])
    for g in np.unique(groups):
        in_g = groups == g
        if out[in_g].sum() > 0:
            out[in_g] *= base[in_g].sum() / out[in_g].sum()
    return out / out.sum()


def with_hard_share(p: np.ndarray | None, hard: np.ndarray, share: float) -> np.ndarray:
    """Drawing probabilities in which the ``hard`` samples (bool, one per sample) get ``share`` of
    the draws together, the others ``1 - share``; within each part the relative weights of ``p``
    (e.g. :func:`sampling_probabilities`' folder shares; uniform when None) are kept.  Without hard
    samples, or with every sample hard, ``p`` unchanged."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the hard examples' share is in [0, 1), got {share}")
    hard = np.asarray(hard, bool)
    base = np.full(len(hard), 1.0 / len(hard)) if p is None else np.asarray(p, float)
    if share == 0.0 or not hard.any() or hard.all():
        return base / base.sum()
    out = np.where(hard, share * base / base[hard].sum(), (1.0 - share) * base / base[~hard].sum())
    return out / out.sum()


class ExamSamples(Protocol):
    """What the loops read of a sample set: ``images (M, n, n)``, ``exam (M,)`` index into
    ``exam_ids``, and ``labels (M, n, n)`` or ``points (M, K, 2)`` (network row, col; NaN = absent)."""

    images: np.ndarray
    exam: np.ndarray
    exam_ids: list[str]
    labels: np.ndarray | None
    points: np.ndarray | None

    def __len__(self) -> int: ...

    def subset(self, idx: np.ndarray) -> "ExamSamples": ...


def exam_split(n_exams: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exam-wise split: ``(train_exams, val_exams)`` index arrays (at least one validation exam)."""
    order = rng.permutation(n_exams)
    n_val = max(1, int(round(val_fraction * n_exams))) if n_exams > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _seed(cfg: TrainConfig) -> np.random.Generator:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    return np.random.default_rng(cfg.seed)


def _tensor_images(images: np.ndarray) -> torch.Tensor:
    """``(M, n, n)`` -> ``(M, 1, n, n)``; images that carry channels ``(M, C, n, n)`` as they are."""
    return torch.from_numpy(channel_batch(images))


def widen_input(state: dict, model: nn.Module, centre: int) -> dict:
    """Weights ``state`` of a one-channel network for ``model``, which takes more input channels:
    the first convolution's kernels go to channel ``centre`` and the other channels' start at zero,
    so the widened network starts out computing exactly what the one-channel network did and
    fine-tuning only adds what the new channels tell it."""
    target = model.state_dict()
    out = dict(state)
    for key, w in state.items():
        if key in target and w.dim() == 4 and w.shape[1] == 1 and target[key].shape[1] > 1 \
                and w.shape[0] == target[key].shape[0]:
            wide = torch.zeros_like(target[key])
            wide[:, centre] = w[:, 0]
            out[key] = wide
    return out


def deepen(state: dict, model: UNet) -> dict:
    """Weights ``state`` of a shallower U-Net (same base) for ``model``, which has more levels: the
    old levels keep their weights (encoder block ``k`` stays ``down.k``; the decoder, indexed from
    the deepest level up, moves down by the levels added), and the new decoder block that takes the
    old bottleneck as its skip starts as the identity on it (the up-path's input weighs zero), so
    the deepened network starts out computing what the shallower one did (in evaluation mode) and
    fine-tuning adds the wider context the new levels see."""
    target = model.state_dict()
    old_levels = levels_of(state)
    added = model.hparams["levels"] - old_levels
    if added < 0 or not all(k in target for k in state if k.startswith("down.")):
        raise ValueError(f"cannot deepen a {old_levels}-level U-Net into a {model.hparams['levels']}-level one")
    out = dict(target)
    for key, w in state.items():
        m = re.match(r"(up|dec)\.(\d+)\.(.*)", key)
        new_key = f"{m.group(1)}.{int(m.group(2)) + added}.{m.group(3)}" if m else key
        if target[new_key].shape != w.shape:
            raise ValueError(f"cannot deepen: {key} {tuple(w.shape)} does not fit {new_key} {tuple(target[new_key].shape)}")
        out[new_key] = w
    if added:  # the block that takes the old bottleneck as its skip passes it on unchanged
        _identity_on_skip(out, f"dec.{added - 1}", f"down.{old_levels - 1}.4")
    return out


def levels_of(state: dict) -> int:
    """Levels of the U-Net whose weights are ``state``."""
    return len({k.split(".")[1] for k in state if k.startswith("down.")})


def _identity_on_skip(state: dict, block: str, skip_bn: str) -> None:
    """Decoder ``block`` (conv-BN-ReLU twice, input ``[up, skip]``) set to pass its skip through.
    Its batch norms are set to the skip's own statistics (a ReLU of the normal that the skip's last
    batch norm ``skip_bn`` makes, per channel), so they give the skip back in evaluation mode
    exactly and, at batch statistics near those, in training mode too."""
    from scipy.stats import norm

    mu, sigma = (state[f"{skip_bn}.{k}"].double() for k in ("bias", "weight"))
    sigma = sigma.abs().clamp_min(1e-6)
    a = (mu / sigma).numpy()
    cdf, pdf = torch.from_numpy(norm.cdf(a)), torch.from_numpy(norm.pdf(a))
    mean = mu * cdf + sigma * pdf
    var = ((mu**2 + sigma**2) * cdf + mu * sigma * pdf - mean**2).clamp_min(1e-6)
    for conv, bn, skip_second in (("0", "1", True), ("3", "4", False)):
        w = state[f"{block}.{conv}.weight"]
        c_out, c_in = w.shape[:2]
        eye = torch.zeros_like(w)
        offset = c_in - c_out if skip_second else 0  # the first block's input is [up, skip]
        eye[torch.arange(c_out), offset + torch.arange(c_out), 1, 1] = 1.0
        eps = 1e-5  # BatchNorm2d's
        state[f"{block}.{conv}.weight"] = eye
        state[f"{block}.{bn}.weight"] = (var + eps).sqrt().float()
        state[f"{block}.{bn}.bias"] = mean.float()
        state[f"{block}.{bn}.running_mean"] = mean.float()
        state[f"{block}.{bn}.running_var"] = var.float()


def _split(samples: ExamSamples, cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    tr_ex, va_ex = exam_split(len(samples.exam_ids), cfg.val_fraction, rng)
    tr = np.flatnonzero(np.isin(samples.exam, tr_ex))
    va = np.flatnonzero(np.isin(samples.exam, va_ex))
    if cfg.max_val_images and len(va) > cfg.max_val_images:
        va = np.sort(rng.choice(va, cfg.max_val_images, replace=False))
    info = {"n_train_exams": int(len(tr_ex)), "n_val_exams": int(len(va_ex)),
            "n_train_images": int(len(tr)), "n_val_images": int(len(va))}
    return tr, va, info


def _epoch_order(rng: np.random.Generator, n_train: int, cfg: TrainConfig, p: np.ndarray | None) -> np.ndarray:
    """Training indices of one epoch: a permutation, or ``steps_per_epoch`` batches drawn (with
    probabilities ``p`` over the training samples where given)."""
    if p is not None:
        return rng.choice(n_train, size=(cfg.steps_per_epoch or n_train // cfg.batch_size) * cfg.batch_size, p=p)
    if cfg.steps_per_epoch:
        n = cfg.steps_per_epoch * cfg.batch_size
        return rng.choice(n_train, size=n, replace=n_train < n)
    return rng.permutation(n_train)


def _fit(model: nn.Module, train_step, val_eval, n_train: int, cfg: TrainConfig,
         rng: np.random.Generator, name: str, t0: float | None = None, p: np.ndarray | None = None) -> dict:
    """Generic loop; ``train_step(idx) -> loss``; ``val_eval() -> (val_loss, metrics)``; ``p``:
    drawing probabilities of the training samples (:func:`sampling_probabilities`)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    t0 = time.monotonic() if t0 is None else t0
    best = {"val_loss": float("inf"), "epoch": -1, "metrics": {}}
    best_state = copy.deepcopy(model.state_dict())
    history = []
    stale = 0
    out_of_time = False
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = _epoch_order(rng, n_train, cfg, p)
        losses = []
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two
                continue
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
                loss = train_step(idx)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if time.monotonic() - t0 > cfg.max_seconds:
                out_of_time = True
                break
        model.eval()
        with torch.no_grad():
            vloss, metrics = val_eval()
        sched.step(vloss)
        rec = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "val_loss": vloss, **metrics, "seconds": round(time.monotonic() - t0, 1)}
        history.append(rec)
        log.info("%s epoch %d: %s", name, epoch, {k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()})
        if vloss < best["val_loss"] - 1e-6:
            best = {"val_loss": vloss, "epoch": epoch, "metrics": metrics}
            best_state = copy.deepcopy(model.state_dict())
            if cfg.checkpoint_path:  # a run cut short still leaves its best weights
                torch.save(best_state, cfg.checkpoint_path)
            stale = 0
        else:
            stale += 1
        if stale >= cfg.patience or out_of_time:
            break
    model.load_state_dict(best_state)
    stop = "time budget" if out_of_time else ("early stopping" if stale >= cfg.patience else "max epochs")
    return {"epochs_run": epoch, "best_epoch": best["epoch"], "val_loss": best["val_loss"],
            "val_metrics": best["metrics"], "stopped_by": stop,
            "seconds": round(time.monotonic() - t0, 1), "history": history}


def _train_p(sample_p: np.ndarray | None, tr: np.ndarray) -> np.ndarray | None:
    """Drawing probabilities over the training split (renormalised), or None."""
    if sample_p is None:
        return None
    p = np.asarray(sample_p, float)[tr]
    return p / p.sum()


def _predict_batches(model: nn.Module, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def dice_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    s = pred.sum() + truth.sum()
    return float(2 * (pred & truth).sum() / s) if s else float("nan")


def mean_dice(pred: np.ndarray, truth: np.ndarray, label: int) -> float:
    """Mean Dice of one label over the images ``(M, n, n)`` whose truth contains it (NaN if none)."""
    d = [dice_score(p == label, t == label) for p, t in zip(pred, truth) if (t == label).any()]
    return float(np.nanmean(d)) if d else float("nan")


def train_segmentation(samples: ExamSamples, cfg: TrainConfig, n_classes: int, dice_labels: dict[str, int],
                       base: int = 16, levels: int = 4, aug: AugmentConfig = SEGMENTATION_AUG,
                       dice_weight: float = 1.0, init_state: dict | None = None,
                       sample_p: np.ndarray | None = None, dice: str = "batch") -> tuple[UNet, dict]:
    """A U-Net with ``n_classes`` outputs on ``samples.labels``; validation reports the mean Dice
    of each ``dice_labels`` entry (metric name -> label value).  ``init_state``: start from these
    weights (continued training) instead of random ones; ``sample_p``: drawing probabilities
    ``(M,)`` of the samples (:func:`sampling_probabilities`; default uniform); ``dice``: the
    loss's Dice term over the batch, per image or both (:func:`~cmr_atlas.nets.losses.segmentation_loss`)."""
    rng = _seed(cfg)
    model = UNet(1, n_classes, base, levels)
    if init_state is not None:
        model.load_state_dict(init_state)
    tr, va, info = _split(samples, cfg, rng)
    x_all = _tensor_images(samples.images)
    y_all = torch.from_numpy(samples.labels.astype(np.int64))
    # Dice over the foreground classes the annotations contain (a never-present class, e.g. one
    # the annotations never trace, would only add a constant pull towards zero)
    dice_classes = [int(c) for c in np.unique(samples.labels) if c > 0]

    def step(idx):
        i = tr[idx]
        x, y, _ = augment_batch(rng, x_all[i], aug, labels=y_all[i])
        return segmentation_loss(model(x), y, dice_weight, dice_classes, dice)

    def val():
        logits = _predict_batches(model, x_all[va])
        loss = float(segmentation_loss(logits, y_all[va], dice_weight, dice_classes, dice))
        pred, truth = logits.argmax(1).numpy(), y_all[va].numpy()
        return loss, {name: mean_dice(pred, truth, label) for name, label in dice_labels.items()}

    report = _fit(model, step, val, len(tr), cfg, rng, "seg", p=_train_p(sample_p, tr))
    report.update(info, train_config=cfg.to_dict(), augmentation=aug.to_dict(), dice_weight=dice_weight,
                  dice_classes=dice_classes, dice=dice)
    return model, report


def landmark_errors(pred_rc: np.ndarray, present: np.ndarray, truth_rc: np.ndarray, spacing_mm: float) -> dict:
    """Detection and distance metrics: ``pred_rc``/``truth_rc (M, K, 2)``, ``present (M, K)``."""
    has = np.isfinite(truth_rc).all(-1)
    hit = has & present
    d = np.linalg.norm(pred_rc - truth_rc, axis=-1)[hit] * spacing_mm
    return {"detection_rate": float(hit.sum() / max(has.sum(), 1)),
            "false_positive_rate": float((present & ~has).sum() / max((~has).sum(), 1)) if (~has).any() else 0.0,
            "distance_mm_mean": float(d.mean()) if d.size else float("nan"),
            "distance_mm_sd": float(d.std()) if d.size else float("nan")}


# points (B, K, 2) network (row, col), NaN = absent, and the grid size -> targets (B, K+1, n, n)
HeatmapTargets = Callable[[torch.Tensor, int], torch.Tensor]
# probabilities (M, K+1, n, n) -> (points (M, K, 2) network (row, col), present (M, K) bool)
HeatmapDecoder = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def landmark_failures(model: nn.Module, images: torch.Tensor, points: np.ndarray, decode: HeatmapDecoder,
                      spacing_mm: float, far_mm: float = 10.0, chunk: int = 256) -> np.ndarray:
    """Per sample (bool), whether ``model`` gets it wrong as the detection figures count it: a
    present landmark missed or placed more than ``far_mm`` from the truth, or an absent one reported.
    ``points (M, K, 2)`` network (row, col), NaN = absent."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            pred, present = decode(torch.softmax(_predict_batches(model, images[i:i + chunk]), 1).numpy())
            truth = points[i:i + chunk]
            has = np.isfinite(truth).all(-1)
            far = np.linalg.norm(pred.reshape(truth.shape) - np.nan_to_num(truth), axis=-1) * spacing_mm > far_mm
            present = present.reshape(has.shape)
            out.append((has & ~present).any(1) | (~has & present).any(1) | (has & present & far).any(1))
    return np.concatenate(out)


def train_heatmap(samples: ExamSamples, cfg: TrainConfig, targets: HeatmapTargets, decode: HeatmapDecoder,
                  spacing_mm: float, base: int = 16, levels: int | None = None, aug: AugmentConfig = LANDMARK_AUG,
                  dice_weight: float = 1.0, init_state: dict | None = None,
                  sample_p: np.ndarray | None = None, hard_share: float = 0.0,
                  partial_volume: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[UNet, dict]:
    """A U-Net with a background channel and one channel per landmark of ``samples.points``,
    trained on ``targets`` (input channels: the images' own, ``(M, C, n, n)``, else one);
    validation decodes the softmax with ``decode``; ``sample_p`` as :func:`train_segmentation`'s.
    ``hard_share`` > 0 (fine-tuning from ``init_state``): the
    training samples the starting network gets wrong (:func:`landmark_failures`: the misses of the
    detection rate, false positives, far points) are drawn ``hard_share`` of the time
    (:func:`with_hard_share`): the rare end slices and banded images the misses come from.
    ``levels`` None: a fine-tune keeps ``init_state``'s depth, a new network has 4 (the shipped ones');
    more levels than ``init_state`` has are added by :func:`deepen`.  ``partial_volume``: target
    points ``(M, K, 2)`` and amplitudes ``(M, K)`` (each landmark's share of the depths an image
    averages) the targets are drawn from instead of ``samples.points`` (which validation still
    scores against); ``targets`` then takes them as ``amplitude`` (:func:`gaussian_targets`)."""
    rng = _seed(cfg)
    if levels is None:
        levels = levels_of(init_state) if init_state is not None else 4
    k = samples.points.shape[1]
    in_channels = samples.images.shape[1] if samples.images.ndim == 4 else 1
    model = UNet(in_channels, k + 1, base, levels)
    if init_state is not None:
        # a one-slice network seeds one that also sees the neighbouring slices
        state = deepen(init_state, model) if levels != levels_of(init_state) else init_state
        model.load_state_dict(widen_input(state, model, in_channels // 2) if in_channels > 1 else state)
    elif hard_share > 0:
        raise ValueError("hard_share needs a starting network (init_state): a random one gets every sample wrong")
    tr, va, info = _split(samples, cfg, rng)
    x_all = _tensor_images(samples.images)
    p_all = torch.from_numpy(samples.points.astype(np.float32))
    # the points the targets are drawn from (validation scores p_all) and their amplitudes
    p_targets, pv_amp = (p_all, None) if partial_volume is None else (
        torch.from_numpy(np.asarray(a, np.float32)) for a in partial_volume)
    hard_info = {}
    if hard_share > 0:
        hard = landmark_failures(model, x_all, samples.points, decode, spacing_mm)
        sample_p = with_hard_share(sample_p, hard, hard_share)
        hard_info = {"hard_examples": {"share": hard_share, "n_training": int(hard[tr].sum()), "of": int(len(tr))}}
        log.info("hard examples: %d of %d training samples, drawn %.0f %% of the time",
                 hard[tr].sum(), len(tr), 100 * hard_share)
    size = x_all.shape[-1]
    weights = [1.0] + [5.0] * k

    def target_maps(p, i):
        return targets(p, size) if pv_amp is None else targets(p, size, amplitude=pv_amp[i])

    def step(idx):
        i = tr[idx]
        x, _, p = augment_batch(rng, x_all[i], aug, points=p_targets[i])
        # a landmark moved outside the grid is absent
        p = torch.where(((p >= 0) & (p <= size - 1)).all(-1, keepdim=True), p, torch.full_like(p, float("nan")))
        return heatmap_loss(model(x), target_maps(p, i), dice_weight, weights)

    def val():
        logits = _predict_batches(model, x_all[va])
        loss = float(heatmap_loss(logits, target_maps(p_targets[va], va), dice_weight, weights))
        pred, pres = decode(torch.softmax(logits, 1).numpy())
        return loss, landmark_errors(pred.reshape(-1, k, 2), pres.reshape(-1, k), p_all[va].numpy(), spacing_mm)

    report = _fit(model, step, val, len(tr), cfg, rng, "heatmap", p=_train_p(sample_p, tr))
    report.update(info, **hard_info, train_config=cfg.to_dict(), augmentation=aug.to_dict(),
                  dice_weight=dice_weight, class_weights=weights)
    return model, report


def complete(samples: ExamSamples) -> ExamSamples:
    """Only images where every landmark is present (coordinate regression cannot say 'absent')."""
    return samples.subset(np.flatnonzero(np.isfinite(samples.points).all(axis=(1, 2))))


def _vgg_stage(model: VGGRegressor, split: tuple, cfg: TrainConfig, rng: np.random.Generator,
               aug: AugmentConfig, spacing_mm: float, name: str) -> dict:
    """Train one view's regressor for one stage of the cyclic schedule; returns :func:`_fit`'s report."""
    s, tr, va, _ = split
    size = s.images.shape[-1]
    x_all = _tensor_images(s.images)
    p_all = torch.from_numpy(s.points.astype(np.float32))

    def step(idx):
        i = tr[idx]
        x, _, p = augment_batch(rng, x_all[i], aug, points=p_all[i])
        return coordinate_loss(model(x), to_normalised(p, size))

    def val():
        pred = _predict_batches(model, x_all[va])
        loss = float(coordinate_loss(pred, to_normalised(p_all[va], size)))
        rc = from_normalised(pred, size).numpy()
        pres = np.ones(rc.shape[:2], bool)
        return loss, landmark_errors(rc, pres, p_all[va].numpy(), spacing_mm)

    return _fit(model, step, val, len(tr), cfg, rng, name)


def train_vgg_cyclic(by_view: dict[str, ExamSamples], cfg: TrainConfig, spacing_mm: float,
                     vgg_kwargs: dict | None = None, aug: AugmentConfig = LANDMARK_AUG,
                     max_cycles: int = 3, transfer: bool = True) -> tuple[dict[str, VGGRegressor], dict]:
    """Legacy paper's scheme: train one view's network, use its weights to initialise the next
    view's, then the third; views in random order; repeat the sequence until no view improves on
    its previous best validation error (or the budget runs out).  ``cfg.max_seconds`` is the
    budget of the whole sequence; each stage gets an equal share of what is left.

    ``transfer=False`` is the paper's baseline ("independent neural networks", Table A-1): every
    stage starts from its view's own previous weights (random at first), never another view's, on
    the same budget, data and schedule, so the two differ only in the weight passing."""
    rng = _seed(cfg)
    t0 = time.monotonic()
    views = sorted(by_view)
    data = {}
    for v in views:
        s = complete(by_view[v])
        data[v] = (s, *_split(s, cfg, rng))
    n_points = by_view[views[0]].points.shape[1]
    size = by_view[views[0]].images.shape[-1]
    new_model = partial(VGGRegressor, n_points=n_points, input_size=size, **(vgg_kwargs or {}))
    best: dict[str, tuple[float, dict, dict]] = {}
    stages = []
    state = None
    own_state: dict[str, dict] = {}
    n_stages_max = max_cycles * len(views)
    for cycle in range(1, max_cycles + 1):
        order = [views[i] for i in rng.permutation(len(views))]
        improved = False
        for v in order:
            remaining = cfg.max_seconds - (time.monotonic() - t0)
            if remaining <= 5:
                break
            model = new_model()
            init = state if transfer else own_state.get(v)
            if init is not None:
                model.load_state_dict(init)
            stages_left = max(1, n_stages_max - len(stages))
            stage_cfg = TrainConfig(**{**cfg.to_dict(), "max_seconds": remaining / min(stages_left, len(views))})
            rep = _vgg_stage(model, data[v], stage_cfg, rng, aug, spacing_mm, f"vgg[{v}]")
            state = copy.deepcopy(model.state_dict())
            own_state[v] = state
            stages.append({"cycle": cycle, "view": v, "val_loss": rep["val_loss"],
                           "val_metrics": rep["val_metrics"], "epochs_run": rep["epochs_run"],
                           "seconds": rep["seconds"]})
            if v not in best or rep["val_loss"] < best[v][0]:
                best[v] = (rep["val_loss"], copy.deepcopy(model.state_dict()), {**rep, **data[v][3]})
                improved = True
        if not improved:
            break
    models, reports = _best_models(best, new_model, cfg, aug)
    return models, {"views": reports, "stages": stages, "transfer": transfer,
                    "seconds": round(time.monotonic() - t0, 1)}


def _best_models(best: dict[str, tuple[float, dict, dict]], new_model: Callable[[], VGGRegressor],
                 cfg: TrainConfig, aug: AugmentConfig) -> tuple[dict[str, VGGRegressor], dict[str, dict]]:
    """Each view's best weights (in eval mode) and its report."""
    models, reports = {}, {}
    for v, (_, st, rep) in best.items():
        m = new_model()
        m.load_state_dict(st)
        models[v] = m.eval()
        rep.update(train_config=cfg.to_dict(), augmentation=aug.to_dict())
        reports[v] = rep
    return models, reports
