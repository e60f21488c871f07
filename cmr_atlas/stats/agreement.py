"""Agreement of automated and manual clinical measures on the same exams (Bland-Altman, Pearson r)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Units of the measures compared in stats/measures_agreement.
AGREEMENT_MEASURES = {"edvi": "ml/m2", "esvi": "ml/m2", "ef_pct": "%", "lvmi": "g/m2"}


def bland_altman(auto, manual) -> dict:
    """Pearson r, bias (auto - manual), SD and 95 % limits of agreement over pairs with both values."""
    a, m = np.asarray(auto, dtype=float), np.asarray(manual, dtype=float)
    ok = np.isfinite(a) & np.isfinite(m)
    a, m = a[ok], m[ok]
    n = int(a.size)
    out = {"n": n, "correlation": math.nan, "bias": math.nan, "sd": math.nan,
           "loa_low": math.nan, "loa_high": math.nan}
    if n == 0:
        return out
    d = a - m
    out["bias"] = float(d.mean())
    if n >= 2:
        out["sd"] = float(d.std(ddof=1))
        out["loa_low"] = out["bias"] - 1.96 * out["sd"]
        out["loa_high"] = out["bias"] + 1.96 * out["sd"]
        if a.std() > 0 and m.std() > 0:
            out["correlation"] = float(np.corrcoef(a, m)[0, 1])
    return out


def measures_agreement(measures: pd.DataFrame | None) -> pd.DataFrame:
    """stats/measures_agreement from a measures table with ``source`` auto and manual rows: one row
    per measure of :data:`AGREEMENT_MEASURES` (measure, unit, then the :func:`bland_altman` keys;
    n = 0 without pairs)."""
    rows = []
    wide = paired_measures(measures)
    for meas, unit in AGREEMENT_MEASURES.items():
        if wide is None or f"{meas}_auto" not in wide:
            r = bland_altman([], [])
        else:
            r = bland_altman(wide[f"{meas}_auto"], wide[f"{meas}_manual"])
        rows.append({"measure": meas, "unit": unit, **r})
    return pd.DataFrame(rows)


def one_method(measures: pd.DataFrame) -> pd.DataFrame:
    """The measures of one method (``model`` when present; the fit stage also writes ``slices``)
    without failed fits: one row per exam and source, never mixing methods, so an exam whose
    model fit failed is left out rather than represented by its slice summation."""
    df = measures
    if "method" in df and df["method"].notna().any():
        methods = sorted(df["method"].dropna().unique())
        df = df[df["method"] == ("model" if "model" in methods else methods[0])]
    if "status" in df:  # fit status ok/partial/failed: a failed fit has no usable measures
        df = df[df["status"] != "failed"]
    return df.drop_duplicates(["exam_id", "source"], keep="first")


def paired_measures(measures: pd.DataFrame | None, columns=AGREEMENT_MEASURES) -> pd.DataFrame | None:
    """One row per exam with ``<measure>_auto`` and ``<measure>_manual`` columns for ``columns``
    (None when a source or every column is absent), from :func:`one_method`."""
    if measures is None or not len(measures) or "source" not in measures:
        return None
    df = one_method(measures)
    cols = [c for c in columns if c in df]
    a = df[df["source"] == "auto"].set_index("exam_id")[cols]
    m = df[df["source"] == "manual"].set_index("exam_id")[cols]
    if not len(a) or not len(m) or not cols:
        return None
    return a.add_suffix("_auto").join(m.add_suffix("_manual"), how="inner").reset_index()
