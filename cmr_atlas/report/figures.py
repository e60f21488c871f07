"""Figures of the cohort report: scree plot, ROC curves, Bland-Altman plots, histograms.

Every function writes one PNG and returns its path.  The atlas mode renders are the atlas stage's
(:mod:`cmr_atlas.cine.atlas_render`); the report draws them itself only when that stage left none.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cmr_atlas.cine.atlas_render import save_png  # noqa: E402

_SOURCE_COLOURS = {"auto": "tab:blue", "manual": "tab:orange"}


def scree_plot(ev: pd.DataFrame, path: str | Path, max_components: int = 20) -> Path:
    """Explained variance (bars) and cumulative share (line) per source."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    sources = sorted(ev["source"].unique())
    width = 0.8 / max(len(sources), 1)
    for i, src in enumerate(sources):
        d = ev[(ev["source"] == src) & (ev["component"] <= max_components)]
        c = _SOURCE_COLOURS.get(src)
        ax.bar(d["component"] + (i - (len(sources) - 1) / 2) * width, 100 * d["ratio"], width=width,
               color=c, alpha=0.6, label=f"{src}: per mode")
        ax.plot(d["component"], 100 * d["cumulative"], "-o", ms=3, color=c, label=f"{src}: cumulative")
    ax.set_xlabel("mode")
    ax.set_ylabel("variance explained (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("Atlas modes: explained variance")
    return save_png(fig, path)


def roc_plot(oof: pd.DataFrame, risk_factor: str, path: str | Path, aucs: dict[str, float] | None = None) -> Path:
    """ROC curves of the out-of-fold predictions of one risk factor, one curve per source."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(3.8, 3.8))
    for src, d in oof[oof["risk_factor"] == risk_factor].groupby("source"):
        if d["outcome"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(d["outcome"], d["probability"])
        lab = f"{src}" + (f" (AUC {aucs[src]:.2f})" if aucs and src in aucs and np.isfinite(aucs[src]) else "")
        ax.plot(fpr, tpr, color=_SOURCE_COLOURS.get(src), label=lab)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(risk_factor)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)


def bland_altman_plot(auto, manual, measure: str, unit: str, path: str | Path) -> Path:
    """Bland-Altman plot: difference (auto - manual) against the mean, bias and 95 % limits."""
    a, m = np.asarray(auto, float), np.asarray(manual, float)
    ok = np.isfinite(a) & np.isfinite(m)
    a, m = a[ok], m[ok]
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    if a.size:
        d, mean = a - m, (a + m) / 2
        ax.scatter(mean, d, s=10, alpha=0.6)
        bias = d.mean()
        ax.axhline(bias, color="k", lw=1, label=f"bias {bias:.2f}")
        if a.size >= 2:
            sd = d.std(ddof=1)
            for v in (bias - 1.96 * sd, bias + 1.96 * sd):
                ax.axhline(v, color="k", ls="--", lw=0.8)
        ax.legend(fontsize=8)
    ax.set_xlabel(f"mean of auto and manual ({unit})")
    ax.set_ylabel(f"auto - manual ({unit})")
    ax.set_title(measure)
    return save_png(fig, path)


def histogram_plot(values: dict[str, np.ndarray], title: str, xlabel: str, path: str | Path) -> Path:
    fig, ax = plt.subplots(figsize=(3.6, 2.8))
    for src, v in values.items():
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=20, alpha=0.55, color=_SOURCE_COLOURS.get(src), label=src)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def volume_curve_plot(curves: pd.DataFrame, path: str | Path, max_exams: int = 40) -> Path:
    """Volume-time curves (``volume_curves`` rows of one source), one panel per method: each exam's
    volume / its largest volume against time (ms), grey, and the cohort median on a common grid."""
    methods = sorted(curves["method"].unique())
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 2.8), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], methods):
        d = curves[curves["method"] == m]
        grid = np.linspace(0, float(d["time_ms"].max()), 60)
        stack = []
        for i, (_, g) in enumerate(d.groupby("exam_id")):
            g = g.sort_values("time_ms")
            v = g["volume_ml"].to_numpy(float) / np.nanmax(g["volume_ml"].to_numpy(float))
            if i < max_exams:
                ax.plot(g["time_ms"], v, color="0.7", lw=0.6)
            t = g["time_ms"].to_numpy(float)
            stack.append(np.where(grid <= t.max(), np.interp(grid, t, v), np.nan))
        if stack:
            ax.plot(grid, np.nanmedian(np.array(stack), axis=0), color="tab:blue", lw=2, label="median")
        ax.set_title(f"method {m}")
        ax.set_xlabel("time after R wave (ms)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("volume / EDV")
    return save_png(fig, path)


def motion_mode_strip(atlas, mode: int, path: str | Path, phases: tuple[int, ...] | None = None,
                      n_sd: float = 2.0) -> Path:
    """A frame strip of one motion mode (:class:`cmr_atlas.cine.motion.MotionAtlas`): the long-axis
    section through the septum (endo and epi) at a few cycle phases, mean (black) and mean -/+
    ``n_sd`` SD along the mode (blue/red)."""
    from cmr_atlas.cine.motion import ES_PHASE

    n = atlas.n_points
    g = int(round(np.sqrt(n)))
    phases = phases or (0, ES_PHASE // 2, ES_PHASE, (ES_PHASE + atlas.n_phases - 1) // 2, atlas.n_phases - 1)
    trajs = {c: atlas.trajectory(mode, s) for c, s in (("tab:blue", -n_sd), ("black", 0.0), ("tab:red", n_sd))}
    fig, axes = plt.subplots(1, len(phases), figsize=(1.9 * len(phases), 2.6), sharex=True, sharey=True)
    for ax, ph in zip(np.atleast_1d(axes), phases):
        for colour, tr in trajs.items():
            for k in range(2):  # endo, epi
                pts = tr[ph, k * n:(k + 1) * n].reshape(g, g, 3)
                sect = np.concatenate([pts[::-1, g // 2], pts[:, 0]])  # lateral base -> apex -> septal base
                ax.plot(sect[:, 0], -sect[:, 2], color=colour, lw=1.0 if colour == "black" else 0.8)
        label = "ED" if ph == 0 else "ES" if ph == ES_PHASE else f"phase {ph}"
        ax.set_title(label, fontsize=8)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(f"motion mode {mode} (-/+{n_sd:g} SD blue/red)", fontsize=9)
    return save_png(fig, path)
