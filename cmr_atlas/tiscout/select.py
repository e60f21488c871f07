"""One scout in, one null point out: ordering and checks, the network's window probabilities, the
decoding, and the classical fit as a second opinion; every failure is a ``qc_reason``.

Decodings (:mod:`cmr_atlas.tiscout.windows`): ``first_acceptable`` (the paper) and
``change_point`` (default: robust to a stray early "acceptable").  ``confidence`` is the
likelihood share of change points within one frame of the chosen null
(:func:`~cmr_atlas.tiscout.windows.null_confidence`); below ``min_confidence`` the frame is still reported but with the QC
reason "ambiguous null point", which the LGE audit reads as "no reliable null point" (amyloid-like
myocardium typically lands there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from cmr_atlas.tiscout import windows as W
from cmr_atlas.tiscout.classical import classical_null
from cmr_atlas.core.config import default, find_models_dir
from cmr_atlas.tiscout.model import load_ti_model, window_probabilities

DECODINGS = ("change_point", "first_acceptable", "classical")
MIN_RECOVERY = 1.5  # late / minimum mean signal of a scout; a cine (no inversion) stays near 1


@dataclass
class TiSelection:
    """Result for one scout; frames are 0-based in order of increasing inversion time."""

    null_frame: int | None = None
    null_ti_ms: float | None = None
    method: str | None = None
    confidence: float | None = None
    qc_reason: str | None = None
    n_frames: int = 0
    window_t0: list[int] = field(default_factory=list)
    p_acceptable: list[float] = field(default_factory=list)
    first_acceptable_frame: int | None = None
    change_point_frame: int | None = None
    classical_frame: int | None = None
    classical_ti_ms: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def recovery_check(frames: np.ndarray) -> str | None:
    """A QC reason when the frames do not show inversion recovery (e.g. a cine series with
    inversion times written): the central mean signal must rise well above its minimum."""
    f = np.asarray(frames, float)
    r, c = f.shape[1:]
    centre = f[:, r // 4: 3 * r // 4, c // 4: 3 * c // 4].mean(axis=(1, 2))
    lo = centre.min()
    late = centre[-3:].mean()
    if lo <= 0 or late / lo < MIN_RECOVERY or int(np.argmin(centre)) >= len(centre) - 3:
        return "no inversion recovery across the frames: not a TI scout (cine?)"
    return None


def default_options() -> dict:
    """``select_null`` options from the config defaults (``tiscout:`` in config.schema.yaml)."""
    opts = {k: default(f"tiscout.{k}") for k in ("model", "decoding", "min_confidence")}
    return {**opts, "models_dir": find_models_dir(default("models_dir"))}


def select_null(frames: np.ndarray, ti_ms, spacing_mm: tuple[float, float], model: str, models_dir,
                decoding: str, min_confidence: float) -> TiSelection:
    """Null point of one scout (frames as stored, ``ti_ms`` per frame, None/NaN = absent);
    options as in the config's ``tiscout:`` section (:func:`default_options`)."""
    if decoding not in DECODINGS:
        raise ValueError(f"tiscout decoding must be one of {DECODINGS}, not {decoding!r}")
    try:
        s = W.order_scout(frames, ti_ms)
    except W.ScoutError as exc:
        return TiSelection(qc_reason=str(exc), n_frames=int(np.shape(frames)[0]) if np.ndim(frames) else 0)
    out = TiSelection(n_frames=len(s.ti_ms), window_t0=W.window_t0(len(s.ti_ms)).tolist())
    reason = recovery_check(s.frames)
    if reason:
        out.qc_reason = reason
        return out
    cl = classical_null(s.frames, s.ti_ms, spacing_mm)
    out.classical_frame, out.classical_ti_ms = cl.null_frame, cl.null_ti_ms
    net, card = load_ti_model(model, models_dir)
    p = window_probabilities(net, card, s.frames, spacing_mm)
    out.p_acceptable = [round(float(v), 4) for v in p]
    out.first_acceptable_frame = W.first_acceptable(p)
    out.change_point_frame = W.change_point(p)[0]
    if decoding == "classical":
        frame, out.method, out.qc_reason = cl.null_frame, "classical", cl.qc_reason
    else:
        frame = out.change_point_frame if decoding == "change_point" else out.first_acceptable_frame
        out.method = f"{model}:{decoding}"
        conf = W.null_confidence(p, frame)
        out.confidence = round(conf, 4)
        if frame is None:
            out.qc_reason = "no acceptable window: no reliable null point"
        elif conf < min_confidence:
            out.qc_reason = f"ambiguous null point (confidence {conf:.2f} < {min_confidence})"
    if frame is not None:
        out.null_frame, out.null_ti_ms = int(frame), float(s.ti_ms[frame])
    return out
