"""Renders of an atlas's modes: one PNG per mode, rows ED and ES, columns mean -/+ 2 SD.

Drawn with pyvista off-screen; where that fails (no OpenGL context on a headless machine) the same
views are drawn with matplotlib's 3D axes instead, and :func:`render_atlas_modes` says which
backend it used.  Used by the atlas stage, and by the report when that stage left no renders.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cmr_atlas.cine.atlas import Atlas, grid_faces  # noqa: E402

log = logging.getLogger(__name__)

RENDER_BACKENDS = ("auto", "pyvista", "matplotlib")  # auto: pyvista, matplotlib if that fails


def save_png(fig, path: str | Path) -> Path:
    """Write a matplotlib figure atomically (temporary name, then rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------------
def _view_frame(atlas: Atlas) -> np.ndarray:
    """Rotation putting the mean shape's long axis (largest principal axis) vertical, apex down
    (the apex = first point of the ED endocardium, ring 0 of the grid)."""
    mean = atlas.mean_points()
    c = mean - mean.mean(axis=0)
    _u, _s, vt = np.linalg.svd(c, full_matrices=False)
    r = np.stack([vt[1], vt[2], vt[0]])  # rows: new x, y, z
    if np.linalg.det(r) < 0:
        r[0] = -r[0]
    if (c[0] @ r[2]) > 0:  # apex above the centre: turn upside down (rotation about x)
        r[1], r[2] = -r[1], -r[2]
    return r


def _mode_panels(atlas: Atlas, mode: int, n_sd: float):
    """[(title, {phase: (endo, epi)})] for mean - n_sd SD, mean, mean + n_sd SD, long axis vertical."""
    out = []
    r = _view_frame(atlas)
    for label, k in ((f"-{n_sd:g} SD", -n_sd), ("mean", 0.0), (f"+{n_sd:g} SD", n_sd)):
        pts = atlas.mean_points() if k == 0 else atlas.mode_shape(mode, k)
        pts = pts @ r.T
        out.append((label, {ph: (atlas.surface(pts, ph, "endo"), atlas.surface(pts, ph, "epi"))
                            for ph in ("ED", "ES")}))
    return out


def _render_pyvista(atlas: Atlas, mode: int, n_sd: float, path: Path) -> Path:
    import pyvista as pv

    from cmr_atlas.cine.atlas import surface_polydata

    panels = _mode_panels(atlas, mode, n_sd)
    pl = pv.Plotter(off_screen=True, shape=(2, 3), window_size=(900, 560), border=False)
    for col, (label, phases) in enumerate(panels):
        for row, ph in enumerate(("ED", "ES")):
            pl.subplot(row, col)
            endo, epi = phases[ph]
            pl.add_mesh(surface_polydata(endo, atlas.grid), color="firebrick", smooth_shading=True)
            pl.add_mesh(surface_polydata(epi, atlas.grid), color="lightsteelblue", opacity=0.35)
            pl.add_text(f"{ph} {label}", font_size=9)
            pl.camera_position = "xz"
            pl.camera.azimuth = 30
            pl.camera.elevation = 15
            pl.reset_camera()
    pl.link_views()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    pl.screenshot(str(tmp))
    pl.close()
    img = plt.imread(tmp)
    if float(np.asarray(img).std()) < 1e-3:  # an all-white image: rendering silently failed
        tmp.unlink(missing_ok=True)
        raise RuntimeError("pyvista produced a blank image")
    tmp.replace(path)
    return path


def _render_matplotlib(atlas: Atlas, mode: int, n_sd: float, path: Path) -> Path:
    panels = _mode_panels(atlas, mode, n_sd)
    fig = plt.figure(figsize=(9, 5.6))
    allpts = np.concatenate([np.concatenate(p) for _, ph in panels for p in ph.values()])
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    nl, nc = atlas.grid
    tri = grid_faces(nl, nc) if nl else None
    for col, (label, phases) in enumerate(panels):
        for row, ph in enumerate(("ED", "ES")):
            ax = fig.add_subplot(2, 3, row * 3 + col + 1, projection="3d")
            endo, epi = phases[ph]
            for pts, colour, alpha in ((endo, "firebrick", 0.9), (epi, "lightsteelblue", 0.25)):
                if tri is not None:
                    ax.plot_trisurf(pts[:, 0], pts[:, 1], pts[:, 2], triangles=tri, color=colour,
                                    alpha=alpha, linewidth=0)
                else:
                    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=1, color=colour)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_zlim(lo[2], hi[2])
            ax.set_title(f"{ph} {label}", fontsize=9)
            ax.set_axis_off()
    return save_png(fig, path)


def render_atlas_modes(
    atlas: Atlas, out_dir: str | Path, n_modes: int, n_sd: float = 2.0, backend: str = "auto"
) -> tuple[list[Path], str]:
    """One PNG per mode (``<source>_mode<k>.png``: rows ED/ES, columns -2 SD, mean, +2 SD; endo red,
    epi translucent).  ``backend``: auto (pyvista, matplotlib if that fails), pyvista or
    matplotlib.  Returns the paths and the backend used."""
    if backend not in RENDER_BACKENDS:
        raise ValueError(f"render backend must be auto, pyvista or matplotlib, got {backend!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    strict = backend == "pyvista"
    backend = "matplotlib" if backend == "matplotlib" else "pyvista"
    paths = []
    for m in range(1, min(n_modes, atlas.n_components) + 1):
        p = out / f"{atlas.source}_mode{m}.png"
        if backend == "pyvista":
            try:
                paths.append(_render_pyvista(atlas, m, n_sd, p))
                continue
            except Exception as exc:  # no OpenGL: fall back for this and the remaining modes
                if strict:
                    raise
                log.warning("pyvista off-screen rendering failed (%s); using matplotlib 3D", exc)
                backend = "matplotlib"
        paths.append(_render_matplotlib(atlas, m, n_sd, p))
    return paths, backend
