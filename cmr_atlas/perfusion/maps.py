"""MBF maps per slice: ``<dir>/<exam_id>/<condition>_<slice>_<level>.npz`` (mbf_ml_min_g, labels,
sectors, the peak-enhancement image; all on the motion-corrected pixel grid; ``endo_rc`` and
``epi_rc``: the network's sub-pixel contours, (N, 2) row, col pixels, where found) and a PNG beside
it: the map on the 0-6 ml/min/g scale over the image, with the myocardial contours and the sector
boundaries of the automated segmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_atlas.perfusion.pipeline import ExamPerfusion

MBF_SCALE_ML_MIN_G = (0.0, 6.0)


def write_maps(ex: ExamPerfusion, out_dir: str | Path, png: bool = True) -> list[Path]:
    """The automated source's maps of every quantified slice; returns the npz paths."""
    out = []
    folder = Path(out_dir) / ex.exam_id
    for (source, condition), results in ex.slices.items():
        if source != "auto":
            continue
        for k, r in enumerate(results):
            if r.mbf_map is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{condition}_{k}_{r.level}.npz"
            image = ex.images.get(condition, [None] * (k + 1))[k]
            np.savez_compressed(path, mbf_ml_min_g=r.mbf_map.astype(np.float32), labels=r.labels,
                                sectors=r.sectors, image=np.asarray(image, np.float32),
                                **{f"{k}_rc": v.astype(np.float32) for k, v in r.contours.items()})
            if png:
                render_png(r.mbf_map, r.sectors, r.labels, image, path.with_suffix(".png"),
                           f"{condition} {r.level}", r.contours)
            out.append(path)
    return out


def render_png(mbf: np.ndarray, sectors: np.ndarray, labels: np.ndarray, image: np.ndarray | None,
               path: Path, title: str, contours: dict[str, np.ndarray] | None = None) -> Path:
    """The PNG of one slice; the myocardium's outline from ``contours`` (endo/epi, row-col
    pixels) where given, else from the class map's edges."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    if image is not None:
        ax.imshow(image, cmap="gray")
    im = ax.imshow(np.ma.masked_invalid(mbf), cmap="jet", vmin=MBF_SCALE_ML_MIN_G[0], vmax=MBF_SCALE_ML_MIN_G[1],
                   alpha=0.8)
    if contours:
        for line in contours.values():
            ax.plot(line[:, 1], line[:, 0], "w-", linewidth=0.6)
    else:
        ax.contour(labels == 2, levels=[0.5], colors="w", linewidths=0.6)
    for s in np.unique(sectors[sectors > 0]):  # sector boundaries
        ax.contour(sectors == s, levels=[0.5], colors="k", linewidths=0.4)
    rows, cols = np.nonzero(labels > 0)
    if len(rows):
        pad = 12
        ax.set_xlim(cols.min() - pad, cols.max() + pad)
        ax.set_ylim(rows.max() + pad, rows.min() - pad)
    ax.set_title(title)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046, label="MBF ml/min/g")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
