"""Training and cross-validation of the TI-selection networks on generated scouts
(:mod:`cmr_atlas.tiscout.trainset`): windows of 4 frames, labels from observer 1's null frame,
binary cross-entropy.

CPU economy (2 cores): every window whose ``t0`` is within ``near`` frames after the earliest
annotated null of the cohort is used in every epoch (that is where early and acceptable meet);
``extra`` random later windows per scout keep the easy "long after the null" case in view.  The
optimiser is Adam (the paper's SGD with momentum needs its 50 epochs); bfloat16 autocast where the
CPU computes it natively.  The best state by validation loss is checkpointed, so a run cut short
still leaves a model.

Run: ``python -m cmr_atlas.tiscout.train TRAIN.npz --arch default --out resources/models`` (final
model) or ``--cv 5`` (out-of-fold probabilities for the benchmark table), under the machine's
training lock.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cmr_atlas.nets.runtime import cpu_has_native_bf16
from cmr_atlas.nets.stemi import StemiNet
from cmr_atlas.tiscout import windows as W
from cmr_atlas.tiscout.trainset import ScoutSet

log = logging.getLogger(__name__)

_PAPER = dict(input_size=32, widths=(8, 16, 32, 64, 64), first_kernel=21, lstm_filters=16, lstm_layers=3,
              lstm_pool=4, features=256, hidden=128)
ARCHS = {  # name -> StemiNet hyper-parameters
    "vgg19": dict(_PAPER, branches="vgg"),
    "lstm": dict(_PAPER, branches="lstm"),
    "stemi": dict(_PAPER, branches="both"),
    "default": dict(branches="both", input_size=32, widths=(8, 16, 32, 32), convs=(1, 1, 1, 1), first_kernel=9,
                    lstm_filters=8, lstm_layers=1, lstm_pool=2, features=64, hidden=64),
}


@dataclass
class TrainCfg:
    epochs: int = 12
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_final: float = 0.02  # the cosine decay ends at this fraction of lr
    max_seconds: float = 300.0
    seed: int = 0
    threads: int = 2
    near: int = 10      # windows with t0 < min(obs1) + near: all, every epoch
    extra: int = 3      # random later windows per scout and epoch
    val_fraction: float = 0.15
    steps: int | None = None  # batches per epoch (None: every selected window once)


def _window_batch(frames: np.ndarray, n: np.ndarray, t0: np.ndarray) -> torch.Tensor:
    idx = t0[:, None] + np.arange(-W.T0_OFFSET, W.WINDOW - W.T0_OFFSET)
    return torch.from_numpy(frames[n[:, None], idx].astype(np.float32))


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Same random flip / transpose / shift / gain for the 4 frames of a window (orientation of a
    scout varies with the planning)."""
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(-1)
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(-2)
    if torch.rand(1, generator=g) < 0.5:
        x = x.transpose(-1, -2)
    s = torch.randint(-2, 3, (2,), generator=g)
    x = torch.roll(x, (int(s[0]), int(s[1])), dims=(-2, -1))
    return x * (0.8 + 0.45 * torch.rand(x.shape[0], 1, 1, 1, generator=g))


def _epoch_windows(obs1: np.ndarray, n_frames: int, cfg: TrainCfg, rng: np.random.Generator):
    t0 = W.window_t0(n_frames)
    cut = int(obs1.min()) + cfg.near
    near = t0[t0 < cut]
    far = t0[t0 >= cut]
    n = np.repeat(np.arange(len(obs1)), len(near) + cfg.extra)
    picks = [np.concatenate([near, rng.choice(far, cfg.extra, replace=False)]) for _ in obs1]
    return n, np.concatenate(picks)


def predict(model: StemiNet, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """P(acceptable) of every window of every scout: ``frames (N, T, S, S) -> (N, W)``."""
    model.eval()
    n_sc, t = frames.shape[:2]
    t0 = W.window_t0(t)
    n = np.repeat(np.arange(n_sc), len(t0))
    tt = np.tile(t0, n_sc)
    out = []
    dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        for i in range(0, len(n), batch):
            out.append(torch.sigmoid(model(_window_batch(frames, n[i:i + batch], tt[i:i + batch])).float()))
    return torch.cat(out).numpy().reshape(n_sc, len(t0))


def _val_loss(model: StemiNet, frames: np.ndarray, obs1: np.ndarray) -> tuple[float, float]:
    p = np.clip(predict(model, frames), 1e-6, 1 - 1e-6)
    y = np.stack([W.window_labels(frames.shape[1], int(o)) for o in obs1])
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), float(np.mean((p >= 0.5) == y))


def train(arch: str, data: ScoutSet, cfg: TrainCfg, checkpoint: Path | None = None,
          val: ScoutSet | None = None) -> tuple[StemiNet, dict]:
    """Train ``ARCHS[arch]`` on ``data`` (validation: ``val`` or a subject-wise share of ``data``);
    returns the best model by validation loss and its history."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    if val is None:
        subjects = np.unique(data.subject)
        held = rng.choice(subjects, max(1, int(round(cfg.val_fraction * len(subjects)))), replace=False)
        val, data = data.subset(np.isin(data.subject, held)), data.subset(~np.isin(data.subject, held))
    model = StemiNet(**ARCHS[arch])
    size = model.hparams["input_size"]
    frames, vframes = data.frames[size], val.frames[size]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # cosine decay over the planned epochs: the labels are a reader's choice (a frame's scatter), so
    # a constant rate keeps the boundary windows' probabilities bouncing from epoch to epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1), eta_min=cfg.lr * cfg.lr_final)
    dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    best, history, start = (np.inf, None), [], time.time()
    for epoch in range(cfg.epochs):
        model.train()
        n, t0 = _epoch_windows(data.obs1, frames.shape[1], cfg, rng)
        order = rng.permutation(len(n))[:None if cfg.steps is None else cfg.steps * cfg.batch]
        for i in range(0, len(order), cfg.batch):
            b = order[i:i + cfg.batch]
            x = _augment(_window_batch(frames, n[b], t0[b]), g)
            y = torch.from_numpy((t0[b] >= data.obs1[n[b]]).astype(np.float32))
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                logit = model(x)
            loss = F.binary_cross_entropy_with_logits(logit.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        vl, va = _val_loss(model, vframes, val.obs1)
        history.append({"epoch": epoch, "val_loss": vl, "val_window_accuracy": va, "s": time.time() - start})
        log.info("%s epoch %d val loss %.4f acc %.4f (%.0f s)", arch, epoch, vl, va, time.time() - start)
        if vl < best[0]:
            best = (vl, {k: v.detach().clone() for k, v in model.state_dict().items()})
            if checkpoint is not None:
                torch.save(best[1], checkpoint)
        if time.time() - start > cfg.max_seconds:
            log.info("%s: time budget reached after epoch %d", arch, epoch)
            break
    model.load_state_dict(best[1])
    return model.eval(), {"history": history, "best_val_loss": best[0], "val_subjects": int(len(np.unique(val.subject)))}


def subject_folds(subject: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold (0..k-1) of every scout, by subject (a subject's scouts share a fold)."""
    subjects = np.unique(subject)
    fold_of = dict(zip(np.random.default_rng(seed).permutation(subjects), np.arange(len(subjects)) % k))
    return np.array([fold_of[s] for s in subject])


def cross_validate(arch: str, data: ScoutSet, k: int, cfg: TrainCfg, folds: list[int] | None = None,
                   heldout: ScoutSet | None = None) -> dict:
    """Out-of-fold window probabilities (NaN for folds not run), per-fold window accuracy and, with
    ``heldout``, each fold model's probabilities on those scouts ``(k, N_heldout, W)``."""
    fold = subject_folds(data.subject, k, cfg.seed)
    n_frames = data.ti_ms.shape[1]
    prob = np.full((len(data), len(W.window_t0(n_frames))), np.nan)
    acc = {}
    held = np.full((k, len(heldout), prob.shape[1]), np.nan) if heldout is not None else None
    for f in folds if folds is not None else range(k):
        model, info = train(arch, data.subset(fold != f), cfg, val=data.subset(fold == f))
        test = fold == f
        prob[test] = predict(model, data.frames[model.hparams["input_size"]][test])
        y = np.stack([W.window_labels(n_frames, int(o)) for o in data.obs1[test]])
        acc[f] = float(np.mean((prob[test] >= 0.5) == y))
        log.info("%s fold %d window accuracy %.4f", arch, f, acc[f])
        if heldout is not None:
            held[f] = predict(model, heldout.frames[model.hparams["input_size"]])
    return {"prob": prob, "fold": fold, "fold_accuracy": acc, "heldout_prob": held}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="ScoutSet .npz (trainset.generate_scouts)")
    ap.add_argument("--arch", choices=list(ARCHS), default="default")
    ap.add_argument("--cv", type=int, default=0, help="k-fold cross-validation by subject instead of a final model")
    ap.add_argument("--folds", type=int, nargs="*", help="run only these folds of the cross-validation")
    ap.add_argument("--heldout", help="ScoutSet .npz: also predict it with every fold model")
    ap.add_argument("--out", required=True, help="models dir (final model) or .npz (cross-validation)")
    ap.add_argument("--name", help="model name (final model)")
    ap.add_argument("--epochs", type=int, default=TrainCfg.epochs)
    ap.add_argument("--max-seconds", type=float, default=TrainCfg.max_seconds)
    ap.add_argument("--steps", type=int, help="batches per epoch (default: every selected window once)")
    ap.add_argument("--threads", type=int, default=TrainCfg.threads, help="CPU threads (one per core you give it)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = ScoutSet.load(args.data)
    cfg = TrainCfg(epochs=args.epochs, max_seconds=args.max_seconds, steps=args.steps, threads=args.threads)
    if args.cv:
        held = ScoutSet.load(args.heldout) if args.heldout else None
        res = cross_validate(args.arch, data, args.cv, cfg, args.folds, held)
        extra = {"heldout_prob": res["heldout_prob"]} if held is not None else {}
        np.savez(args.out, prob=res["prob"], fold=res["fold"], subject=data.subject, **extra,
                 fold_accuracy=json.dumps(res["fold_accuracy"]), cfg=json.dumps(asdict(cfg)), arch=args.arch)
        print(json.dumps(res["fold_accuracy"]))
        return 0
    from cmr_atlas.tiscout.model import save_ti_model

    out = Path(args.out)
    model, info = train(args.arch, data, cfg, checkpoint=out / f".{args.name or args.arch}.ckpt")
    print(save_ti_model(model, args.name or f"ti_{args.arch}", out, args.arch, cfg, info, len(data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
