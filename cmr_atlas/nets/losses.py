"""Losses: segmentation (pixel-wise cross-entropy + soft Dice) and heatmaps (KL + soft Dice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice(probs: torch.Tensor, target: torch.Tensor, classes: list[int] | None = None,
              weights: torch.Tensor | None = None, eps: float = 1.0, per_image: bool = False) -> torch.Tensor:
    """1 - weighted mean soft Dice over ``classes`` (default: all but channel 0).

    ``probs`` and ``target`` are ``(B, C, H, W)``; sums run over the batch and pixels, so an image
    without a class does not give a 0/0 Dice.  ``per_image``: each class's Dice is the mean of its
    Dice on the images that contain it, so a small structure (an apical slice's few myocardium
    pixels) weighs as much as a large one; a class no image of the batch contains counts as 1.
    """
    classes = list(range(1, probs.shape[1])) if classes is None else classes
    p, t = probs[:, classes], target[:, classes]
    if per_image:
        inter, t_sum = (p * t).sum(dim=(2, 3)), t.sum(dim=(2, 3))
        img_dice = (2 * inter + eps) / (p.sum(dim=(2, 3)) + t_sum + eps)
        present = (t_sum > 0).to(img_dice.dtype)
        n = present.sum(0)
        dice = torch.where(n > 0, (img_dice * present).sum(0) / n.clamp_min(1), torch.ones_like(n))
    else:
        inter = (p * t).sum(dim=(0, 2, 3))
        denom = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
        dice = (2 * inter + eps) / (denom + eps)
    w = torch.ones_like(dice) if weights is None else weights.to(dice)
    return 1.0 - (w * dice).sum() / w.sum()


DICE_MODES = ("batch", "image", "both")


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, dice_weight: float = 1.0,
                      dice_classes: list[int] | None = None, dice: str = "batch") -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` x (1 - soft Dice of the foreground classes), the Dice over
    the batch (``dice`` "batch"), per image ("image": :func:`soft_dice`'s ``per_image``) or the
    mean of the two ("both")."""
    if dice not in DICE_MODES:
        raise ValueError(f"dice must be one of {DICE_MODES}, not {dice!r}")
    ce = F.cross_entropy(logits, labels.long())
    onehot = F.one_hot(labels.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    probs = torch.softmax(logits, 1)
    terms = [soft_dice(probs, onehot, dice_classes, per_image=m == "image") for m in ("batch", "image")
             if dice in (m, "both")]
    return ce + dice_weight * sum(terms) / len(terms)


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
