"""The overlay strip of one exam: its images with the automated and manual contours on top.

One PNG per exam, two rows (ED, ES) and one column per view: a few SAX slices (base, mid, apex)
then the long-axis views present.  Automated contours come from the inference masks (SAX: LV
cavity and epicardial border of cavity + myocardium); where there are no masks, and on the LAX
views, from the automated guide points.  Manual contours (every guide-point source other than
``auto``) are drawn from their points projected onto each image plane.  Colours are fixed
(:data:`COLOURS`) and named in a small legend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from cmr_atlas.cine.atlas_render import save_png  # noqa: E402
from cmr_atlas.core.geometry import SlicePlane  # noqa: E402
from cmr_atlas.core.imagecache import ExamImages  # noqa: E402
from cmr_atlas.core.vocab import CAVITY, LAX_VIEWS, MYO  # noqa: E402

COLOURS = {"auto": "#ffd000", "manual": "#00e5ff"}  # yellow automated, cyan manual: distinct on grey
ON_PLANE_MM = 3.0  # a point farther than this from an image plane is not drawn on it
PANEL_IN = 1.7  # panel size in inches: small figures, quick to write
CROP_PAD = 0.6  # crop box = contour bounding box grown by this share of its size on each side


@dataclass(frozen=True)
class Panel:
    view: str  # sax, lax_2ch, lax_4ch
    title: str
    image: np.ndarray  # (R, C)
    plane: SlicePlane
    mask: np.ndarray | None  # (R, C) labels for SAX panels with masks
    window: tuple[float, float]  # grey levels shown black and white (one per cine)


def sax_slices(n_slices: int, n: int = 3) -> list[int]:
    """Base, mid and apex slice indices (slice 0 is the most basal), without repeats."""
    if n_slices <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, n_slices - 1, min(n, n_slices))})


def phase_frames(images: ExamImages, masks: np.ndarray | None, phases_row: dict | None) -> dict[str, int]:
    """ED and ES frames of the SAX cine: the phases table, else the masks' largest and smallest
    cavity, else frame 0 only."""
    if phases_row and all(pd.notna(phases_row.get(k)) for k in ("ed_frame", "es_frame")):
        return {"ED": int(phases_row["ed_frame"]), "ES": int(phases_row["es_frame"])}
    if masks is not None and masks.ndim == 4 and (masks == CAVITY).any():
        area = (masks == CAVITY).sum(axis=(0, 2, 3))
        return {"ED": int(np.argmax(area)), "ES": int(np.argmin(np.where(area > 0, area, area.max() + 1)))}
    return {"frame 0": 0}


def panels(images: ExamImages, masks: np.ndarray | None, phase: str, frame: int) -> list[Panel]:
    """The panels of one row: SAX base/mid/apex at ``frame``, then each LAX view at the same point
    of the cycle (frame scaled to the view's own frame count)."""
    out = []
    n = len(images.sax_planes)
    window = grey_window(images.sax[:, frame])
    for s, name in zip(sax_slices(n), ("base", "mid", "apex") if n >= 3 else ("slice",) * 3):
        m = masks[s, frame] if masks is not None and masks.shape[:2] == images.sax.shape[:2] else None
        out.append(Panel("sax", f"{phase} SAX {name} ({s})", images.sax[s, frame], images.sax_planes[s], m, window))
    for view in LAX_VIEWS:
        if view in images.lax:
            cine = images.lax[view]
            t = min(int(round(frame * cine.shape[0] / max(images.n_frames, 1))), cine.shape[0] - 1)
            out.append(Panel(view, f"{phase} {view.replace('lax_', '').upper()}", cine[t], images.lax_planes[view],
                             None, grey_window(cine[t])))
    return out


def grey_window(images: np.ndarray) -> tuple[float, float]:
    """Display range of a set of images: 1st to 99.5th percentile (a flat image: its value + 1)."""
    v = np.asarray(images, float)
    v = v[np.isfinite(v)]
    lo, hi = (float(x) for x in np.percentile(v, [1, 99.5])) if v.size else (0.0, 1.0)
    return lo, hi if hi > lo else lo + 1.0


def overlay_strip(
    images: ExamImages,
    masks: np.ndarray | None,
    points: pd.DataFrame | None,
    frames: dict[str, int],
    path: str | Path,
) -> Path:
    """Write the strip of one exam (rows: ``frames``; columns: :func:`panels`) and return its path.

    ``points``: the exam's guide points (columns of the guide_points table), or None.
    """
    rows = [(ph, panels(images, masks, ph, t)) for ph, t in frames.items()]
    ncol = max(len(p) for _, p in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(PANEL_IN * ncol, PANEL_IN * len(rows) + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    used: set[str] = set()
    boxes: dict[str, list[np.ndarray]] = {}  # view -> pixels to keep in view (one crop per view)
    for r, (phase, row) in enumerate(rows):
        for c, panel in enumerate(row):
            pts = _points_on(points, panel, phase)
            used |= _draw_panel(axes[r, c], panel, pts)
            boxes.setdefault(panel.view, []).extend(_content_rc(panel, pts))
    for r, (_, row) in enumerate(rows):
        for c, panel in enumerate(row):
            _crop(axes[r, c], boxes[panel.view])
    handles = [Line2D([], [], color=COLOURS[k.split()[0]], ls="-" if "mask" in k else "--", marker="." if "points"
                      in k else None, label=k) for k in sorted(used)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.suptitle(images.exam_id, fontsize=8)
    fig.subplots_adjust(wspace=0.03, hspace=0.15, bottom=0.08 if handles else 0.02, top=0.9)
    return save_png(fig, path)


def _draw_panel(ax, panel: Panel, pts: pd.DataFrame) -> set[str]:
    """Image, mask contours and point contours of one panel; returns the legend keys it used."""
    lo, hi = panel.window
    ax.imshow(panel.image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    used = set()
    if panel.mask is not None and (panel.mask > 0).any():
        for sel in ((panel.mask == CAVITY), (panel.mask == CAVITY) | (panel.mask == MYO)):
            if sel.any():
                ax.contour(sel.astype(float), levels=[0.5], colors=COLOURS["auto"], linewidths=0.8)
        used.add("auto masks")
    for (src, kind, surface), d in pts.groupby(["src", "kind", "surface"], dropna=False, sort=True):
        if src == "auto" and panel.mask is not None:
            continue  # the masks are the automated contours here
        colour = COLOURS[src]
        d = d.sort_values("point_index") if "point_index" in d else d
        if kind == "contour":
            ax.plot(d["col_px"], d["row_px"], "--", color=colour, lw=0.8, marker=".", ms=1.5)
        else:
            ax.plot(d["col_px"], d["row_px"], "x", color=colour, ms=3)
        used.add(f"{src} points")
    ax.set_title(panel.title, fontsize=6, pad=2)
    return used


def _points_on(points: pd.DataFrame | None, panel: Panel, phase: str) -> pd.DataFrame:
    """The guide points of ``phase`` and the panel's view that lie on its plane, in pixels, with
    ``src`` = auto or manual."""
    cols = ["src", "kind", "surface", "point_index", "row_px", "col_px"]
    if points is None or not len(points):
        return pd.DataFrame(columns=cols)
    d = points[(points["view"] == panel.view) & (points["phase"] == phase)]
    if not len(d):
        return pd.DataFrame(columns=cols)
    rc, dist = panel.plane.patient_to_pixel(d[["x_mm", "y_mm", "z_mm"]].to_numpy(float))
    d = d.assign(row_px=rc[:, 0], col_px=rc[:, 1], src=np.where(d["source"] == "auto", "auto", "manual"))
    d = d[np.abs(dist) <= ON_PLANE_MM]
    if "surface" not in d:
        d = d.assign(surface=None)
    return d.assign(surface=d["surface"].fillna(""))[[c for c in cols if c in d]]


def _content_rc(panel: Panel, pts: pd.DataFrame) -> list[np.ndarray]:
    """Pixels (row, col) of the panel's contours: mask foreground and points."""
    rc = [pts[["row_px", "col_px"]].to_numpy(float)] if len(pts) else []
    if panel.mask is not None and (panel.mask > 0).any():
        rc.append(np.argwhere(panel.mask > 0).astype(float))
    return rc


def _crop(ax, rc: list[np.ndarray]) -> None:
    """Zoom on the heart: the bounding box of ``rc`` grown by :data:`CROP_PAD` (whole image when empty)."""
    if not rc:
        return
    allrc = np.concatenate(rc)
    lo, hi = allrc.min(0), allrc.max(0)
    half = max((hi - lo).max() * (0.5 + CROP_PAD), 16.0)
    ctr = (lo + hi) / 2
    ax.set_xlim(ctr[1] - half, ctr[1] + half)
    ax.set_ylim(ctr[0] + half, ctr[0] - half)
