"""Volume-time curves and the functional indices of systole and diastole read from them.

Per exam, guide-point source and method (``model``: the LV model at every frame,
:mod:`cmr_atlas.cine.lvmodel.cycle`; ``slices``: slice summation of each frame's SAX contours), a
cavity volume per cine frame (table ``volume_curves``) and the indices of UK Biobank-style volume
curve analysis (table ``function_indices``):

* rates are central differences of the volume over the frames' trigger times (``numpy.gradient``,
  one-sided at the ends), so they are read at the acquired temporal resolution (30-45 ms);
* ES = the frame of smallest volume, ED = the largest volume before it (frame 0 in practice);
* peak ejection rate (PER) = the steepest fall between ED and ES;
* peak early filling rate (E) = the steepest rise in the first 60 % of diastole (ES to the last
  frame); its time after ES is the time to peak filling;
* the atrial peak (A) = the steepest rise after the lowest filling rate that follows E (the
  diastasis trough), if that trough falls below 60 % of E (a separate atrial wave) and the peak
  rises above it by at least 20 % of E (a wave, not the slow filling of diastasis); else null
  (E and A fused, or the acquisition ended before atrial contraction);
* diastasis = the time between E and A during which the filling rate stays below 20 % of E
  (linear interpolation between frames); 0 when E and A fuse, null without an A peak.

Rates are in ml/s and also in EDV/s (divided by the curve's EDV), the units of the published
normal values (docs/motion.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.columns import EXAM_ID, FRAME, GUIDE_POINT_SOURCE
from cmr_atlas.core.tables import Column, TableSchema, register

EARLY_DIASTOLE_FRACTION = 0.6  # E is sought in this first share of diastole
SEPARATE_A_FRACTION = 0.6  # a trough below this share of E separates the atrial wave
# the atrial peak must rise above that trough by this share of E: slower filling at the end of an
# acquisition that stops before atrial contraction is diastasis, not an atrial wave (docs/motion.md)
ATRIAL_RISE_FRACTION = 0.2
DIASTASIS_FRACTION = 0.2  # diastasis: filling slower than this share of E

_KEY = (EXAM_ID, GUIDE_POINT_SOURCE, Column("method", "str", "model or slices", nullable=False))

VOLUME_CURVES = register(TableSchema(
    name="volume_curves", row="exam, source, method and cine frame",
    description=(
        "LV cavity volume at every cine frame: method `model` = the LV model fitted at each frame "
        "(warm-started from the neighbouring frame, the exam's ED breath-hold shifts; the ED and ES "
        "frames are the ED/ES fit of `measures`), method `slices` = slice summation of the frame's "
        "SAX contours. Frames with fewer than 3 SAX slices with contours have no row."
    ),
    columns=(
        *_KEY,
        FRAME,
        Column("time_ms", "float", "trigger time after the R wave", "ms"),
        Column("volume_ml", "float", "cavity volume below the mitral plane (model) or slice sum", "ml"),
    ),
))

FUNCTION_INDICES = register(TableSchema(
    name="function_indices", row="exam, source and method",
    description=(
        "Systolic and diastolic function from the volume curve (`volume_curves`): peak ejection "
        "rate, peak early (E) and atrial (A) filling rates and their ratio, time to peak filling, "
        "diastasis duration; rates in ml/s and in EDV/s. Definitions in "
        "`cmr_atlas.cine.volume_curves` (docs/motion.md). Null where the curve does not show the "
        "feature (e.g. no separate atrial wave)."
    ),
    columns=(
        *_KEY,
        Column("n_frames", "int", "frames on the curve"),
        Column("ed_frame", "int", "frame of the largest volume before ES"),
        Column("es_frame", "int", "frame of the smallest volume"),
        Column("edv_ml", "float", "largest volume before ES", "ml"),
        Column("esv_ml", "float", "smallest volume", "ml"),
        Column("per_ml_s", "float", "peak ejection rate", "ml/s"),
        Column("pfr_e_ml_s", "float", "peak early filling rate (E)", "ml/s"),
        Column("pfr_a_ml_s", "float", "peak atrial filling rate (A)", "ml/s"),
        Column("per_edv_s", "float", "peak ejection rate / EDV", "EDV/s"),
        Column("pfr_e_edv_s", "float", "E / EDV", "EDV/s"),
        Column("pfr_a_edv_s", "float", "A / EDV", "EDV/s"),
        Column("e_a_ratio", "float", "E / A"),
        Column("time_to_pfr_ms", "float", "time from ES to the early filling peak", "ms"),
        Column("diastasis_ms", "float", "time between E and A with filling below 20 % of E", "ms"),
        Column("status", "str", "ok or failed", nullable=False),
        Column("qc_reason", "str", "why failed (e.g. too_few_frames)"),
    ),
))

MIN_FRAMES = 8  # fewer frames cannot show ejection and both filling waves


def _below_duration(t: np.ndarray, rate: np.ndarray, level: float) -> float:
    """Time (ms) during which the piecewise-linear ``rate`` stays below ``level``."""
    total = 0.0
    for i in range(len(t) - 1):
        a, b = rate[i] - level, rate[i + 1] - level
        dt = t[i + 1] - t[i]
        if a < 0 and b < 0:
            total += dt
        elif a < 0 <= b or b < 0 <= a:
            below = a if a < 0 else b
            total += dt * (-below) / (abs(a) + abs(b))
    return total


def function_indices(time_ms: np.ndarray, volume_ml: np.ndarray, frames: np.ndarray | None = None) -> dict:
    """The indices of one volume curve (values of :data:`FUNCTION_INDICES` without the key)."""
    t = np.asarray(time_ms, dtype=float)
    v = np.asarray(volume_ml, dtype=float)
    frames = np.arange(len(t)) if frames is None else np.asarray(frames)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v, frames = t[ok], v[ok], frames[ok]
    out = {c.name: None for c in FUNCTION_INDICES.columns[3:]}
    out["n_frames"] = int(len(t))
    if len(t) < MIN_FRAMES or np.any(np.diff(t) <= 0):
        out.update(status="failed", qc_reason="too_few_frames" if len(t) < MIN_FRAMES else "bad_trigger_times")
        return out
    rate = np.gradient(v, t / 1000.0)  # ml/s
    i_es = int(np.argmin(v))
    i_ed = int(np.argmax(v[: i_es + 1]))
    edv = float(v[i_ed])
    out.update(ed_frame=int(frames[i_ed]), es_frame=int(frames[i_es]), edv_ml=edv, esv_ml=float(v[i_es]),
               status="ok", qc_reason=None)
    if i_es > i_ed:
        out["per_ml_s"] = float(-rate[i_ed:i_es + 1].min())
    n = len(t)
    if n - i_es < 3:
        out.update(status="failed", qc_reason="no_diastole")
        return out
    early_end = i_es + max(2, int(np.ceil(EARLY_DIASTOLE_FRACTION * (n - 1 - i_es))))
    i_e = i_es + int(np.argmax(rate[i_es:early_end + 1]))
    e = float(rate[i_e])
    out["pfr_e_ml_s"], out["time_to_pfr_ms"] = e, float(t[i_e] - t[i_es])
    if i_e < n - 2:
        i_tr = i_e + int(np.argmin(rate[i_e:]))
        if i_tr < n - 1 and rate[i_tr] < SEPARATE_A_FRACTION * e:
            i_a = i_tr + int(np.argmax(rate[i_tr:]))
            a = float(rate[i_a])
            if a - rate[i_tr] >= ATRIAL_RISE_FRACTION * e and i_a > i_tr:
                out["pfr_a_ml_s"], out["e_a_ratio"] = a, e / a if a > 0 else None
                out["diastasis_ms"] = _below_duration(t[i_e:i_a + 1], rate[i_e:i_a + 1], DIASTASIS_FRACTION * e)
    for k in ("per", "pfr_e", "pfr_a"):
        if out[f"{k}_ml_s"] is not None and edv > 0:
            out[f"{k}_edv_s"] = out[f"{k}_ml_s"] / edv
    return out


def curve_rows(exam_id: str, source: str, method: str, frames, time_ms, volume_ml) -> pd.DataFrame:
    """``volume_curves`` rows of one curve."""
    return pd.DataFrame({"exam_id": exam_id, "source": source, "method": method,
                         "frame": np.asarray(frames, dtype=int), "time_ms": np.asarray(time_ms, dtype=float),
                         "volume_ml": np.asarray(volume_ml, dtype=float)})[VOLUME_CURVES.column_names]


def indices_table(curves: pd.DataFrame) -> pd.DataFrame:
    """``function_indices``: one row per (exam, source, method) curve of a ``volume_curves`` table."""
    rows = []
    for (e, s, m), g in curves.groupby(["exam_id", "source", "method"], sort=True):
        g = g.sort_values("frame")
        rows.append({"exam_id": e, "source": s, "method": m,
                     **function_indices(g["time_ms"].to_numpy(), g["volume_ml"].to_numpy(), g["frame"].to_numpy())})
    if not rows:
        return FUNCTION_INDICES.empty()
    return pd.DataFrame(rows)[FUNCTION_INDICES.column_names]
