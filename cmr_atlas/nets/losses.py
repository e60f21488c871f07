"""Losses: segmentation (pixel-wise cross-entropy + soft Dice) and heatmaps (KL + soft Dice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice(probs: torch.Tensor, target: torch.Tensor, classes: list[int] | None = None,
              weights: torch.Tensor | None = None, eps: float = 1.0) -> torch.Tensor:
    """1 - weighted mean soft Dice over ``classes`` (default: all but channel 0).

    ``probs`` and ``target`` are ``(B, C, H, W)``; sums run over the batch and pixels, so an image
    without a class does not give a 0/0 Dice.
    """
    classes = list(range(1, probs.shape[1])) if classes is None else classes
    p, t = probs[:, classes], target[:, classes]
    inter = (p * t).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = (2 * inter + eps) / (denom + eps)
    w = torch.ones_like(dice) if weights is None else weights.to(dice)
    return 1.0 - (w * dice).sum() / w.sum()


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, dice_weight: float = 1.0,
                      dice_classes: list[int] | None = None) -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` x (1 - soft Dice of the foreground classes)."""
    ce = F.cross_entropy(logits, labels.long())
    onehot = F.one_hot(labels.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    return ce + dice_weight * soft_dice(torch.softmax(logits, 1), onehot, dice_classes)


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0,
                 class_weights: list[float] | None = None) -> torch.Tensor:
    """KL(target || softmax(logits)) per pixel (mean) + ``dice_weight`` x soft Dice of the landmark
    channels.  ``target`` channels: 0 = background (1 - sum of landmarks), then one per landmark."""
    logp = torch.log_softmax(logits, 1)
    kl = (target * (torch.log(target.clamp_min(1e-8)) - logp)).sum(1).mean()
    w = None if class_weights is None else torch.tensor(class_weights[1:], dtype=logits.dtype)
    return kl + dice_weight * soft_dice(logp.exp(), target, weights=w)


def coordinate_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of normalised coordinates (the paper's RMSE criterion, squared)."""
    return F.mse_loss(pred, target)
