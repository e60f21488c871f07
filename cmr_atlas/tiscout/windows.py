"""The STEMI-Net formulation (Bahrami et al., MRM 2019, section 2.3): a scout ordered by inversion
time becomes overlapping windows of four consecutive frames ``(t-2, t-1, t0, t+1)``, each labelled
by its third frame ``t0``: *early* before the annotated null point, *acceptable* at or after it.
The predicted null point is the ``t0`` of the first acceptable window (:func:`first_acceptable`),
or, robust to a stray early "acceptable", the single early -> acceptable change point that best
explains all window probabilities (:func:`change_point`).

Windows exist for ``t0 = 2 .. T-2`` (every frame that has two before and one after it), so window
``i`` has ``t0 = i + 2``; frames 0, 1 and T-1 are never a window's ``t0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW = 4
T0_OFFSET = 2  # index of t0 within a window
MIN_FRAMES = 8


@dataclass(frozen=True)
class ScoutSeries:
    """A scout's frames in order of increasing inversion time."""

    frames: np.ndarray  # (T, R, C)
    ti_ms: np.ndarray  # (T,)
    order: np.ndarray  # (T,) index of each ordered frame in the series as stored


class ScoutError(ValueError):
    """A scout that cannot give a null point; the message is the QC reason."""


def order_scout(frames: np.ndarray, ti_ms) -> ScoutSeries:
    """Sort frames by inversion time and check what the method needs (specific reasons otherwise)."""
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ScoutError(f"scout frames must be (T, rows, cols), got shape {frames.shape}")
    ti = np.array([np.nan if v is None else v for v in ti_ms], dtype=float)
    if ti.shape != (frames.shape[0],):
        raise ScoutError(f"{frames.shape[0]} frames but {ti.size} inversion times")
    if np.isnan(ti).any():
        raise ScoutError(f"no InversionTime on {int(np.isnan(ti).sum())} of {ti.size} frames")
    if frames.shape[0] < MIN_FRAMES:
        raise ScoutError(f"only {frames.shape[0]} frames (need >= {MIN_FRAMES})")
    order = np.argsort(ti, kind="stable")
    ti = ti[order]
    if np.any(np.diff(ti) <= 0):
        raise ScoutError("duplicated inversion times")
    if ti[-1] - ti[0] < 200.0:
        raise ScoutError(f"inversion times span only {ti[-1] - ti[0]:.0f} ms: not a TI scout")
    return ScoutSeries(frames[order], ti, order)


def window_t0(n_frames: int) -> np.ndarray:
    """Frame index ``t0`` of each window."""
    return np.arange(T0_OFFSET, n_frames - (WINDOW - T0_OFFSET - 1))


def windows(frames: np.ndarray) -> np.ndarray:
    """(W, 4, R, C) windows of consecutive frames (a strided view: no copy)."""
    v = np.lib.stride_tricks.sliding_window_view(np.asarray(frames), WINDOW, axis=0)  # (W, R, C, 4)
    return np.moveaxis(v, -1, 1)


def window_labels(n_frames: int, null_frame: int) -> np.ndarray:
    """1 (acceptable) where the window's ``t0 >= null_frame``, else 0 (early)."""
    return (window_t0(n_frames) >= null_frame).astype(np.int8)


def first_acceptable(p_acceptable: np.ndarray, threshold: float = 0.5) -> int | None:
    """The paper's decoding: ``t0`` of the first window with p >= threshold (None: none)."""
    p = np.asarray(p_acceptable, dtype=float)
    hit = np.nonzero(p >= threshold)[0]
    return int(hit[0] + T0_OFFSET) if len(hit) else None


def change_point_shares(p_acceptable: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Likelihood share of each change point ``k = 0 .. W`` ("windows < k early, >= k
    acceptable"; ``k = W``: none acceptable) given every window's probability; sums to 1."""
    p = np.clip(np.asarray(p_acceptable, dtype=float), eps, 1.0 - eps)
    log_early, log_ok = np.log1p(-p), np.log(p)
    before = np.concatenate([[0.0], np.cumsum(log_early)])
    after = np.concatenate([np.cumsum(log_ok[::-1])[::-1], [0.0]])
    ll = before + after
    share = np.exp(ll - ll.max())
    return share / share.sum()


def change_point(p_acceptable: np.ndarray, eps: float = 1e-4) -> tuple[int | None, float]:
    """The null frame that maximises the likelihood of "early before it, acceptable from it on"
    given every window's probability, and that likelihood's share among all change points (a
    confidence in [0, 1]; None when "no window acceptable" is likeliest).  One stray high
    probability before the true change no longer decides."""
    share = change_point_shares(p_acceptable, eps)
    k = int(np.argmax(share))
    return (None if k == len(share) - 1 else k + T0_OFFSET), float(share[k])


def null_confidence(p_acceptable: np.ndarray, frame: int | None, eps: float = 1e-4) -> float:
    """Likelihood share of change points within one frame of ``frame`` (readers differ by a frame,
    the paper notes): near 1 for a clear change, low when the probabilities leave the null open."""
    if frame is None:
        return 0.0
    share = change_point_shares(p_acceptable, eps)[:-1]
    k = frame - T0_OFFSET
    return float(share[max(k - 1, 0): k + 2].sum())
