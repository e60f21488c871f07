"""The atlas stage's files: build the atlases of a cohort's shapes table and write them, or project
shapes onto a saved atlas.  Called by ``cmr-atlas atlas`` and by the workflow's atlas rule.

Files written by :func:`write_atlas` (paths given by the caller):

    scores_path                        exam_id, source, rms_to_mean_mm, pc1..pc20
    explained_variance_path            source, component, variance, ratio, cumulative, n_exams
    <atlas_dir>/<source>.npz           the reusable atlas (layout: cmr_atlas.cine.atlas docstring)
    <atlas_dir>/surfaces/<source>_*.vtp   mean and mean +- 2 SD of the first modes, one per surface
    <atlas_dir>/renders/<source>_mode<k>.png   renders of the first modes at ED and ES
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.atlas import (
    EXPLAINED_VARIANCE,
    SCORES,
    Atlas,
    AtlasBuild,
    build_atlases,
    explained_variance_frame,
    scores_frame,
    shape_vectors,
    write_vtp_surfaces,
)
from cmr_atlas.core.tables import write_table

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def write_atlas(
    shapes_path: PathLike,
    exams_path: PathLike | None,
    scores_path: PathLike,
    explained_variance_path: PathLike,
    atlas_dir: PathLike,
    n_components: int,
    scaling: bool,
    modes_to_render: int,
    render_backend: str,
) -> AtlasBuild:
    """Build one atlas per source of the shapes table and write its tables, npz, VTP and renders.

    Only exams with status 'ok' in the exams table enter (every exam when ``exams_path`` is None or
    not a file); ``modes_to_render`` = 0 writes no VTP surfaces and no renders.
    """
    shapes = pd.read_parquet(shapes_path)
    exams = pd.read_parquet(exams_path) if exams_path and Path(exams_path).is_file() else None
    build = build_atlases(shapes, exams, n_components=n_components, scaling=scaling)
    for note in build.notes:
        log.info("atlas: %s", note)
    for src, ex in build.excluded.items():
        if ex:
            log.info("atlas %s: %d exams left out", src, len(ex))
    scores = [scores_frame(a) for a in build.atlases.values()]
    ev = [explained_variance_frame(a) for a in build.atlases.values()]
    write_table(pd.concat(scores, ignore_index=True) if scores else SCORES.empty(), scores_path, SCORES)
    write_table(pd.concat(ev, ignore_index=True) if ev else EXPLAINED_VARIANCE.empty(),
                explained_variance_path, EXPLAINED_VARIANCE)
    for src, atlas in build.atlases.items():
        atlas.save(Path(atlas_dir) / f"{src}.npz")
        if modes_to_render > 0:
            _write_modes(atlas, Path(atlas_dir), modes_to_render, render_backend)
    return build


def _write_modes(atlas: Atlas, atlas_dir: Path, n_modes: int, render_backend: str) -> None:
    """VTP surfaces and PNG renders of the first ``n_modes`` modes."""
    from cmr_atlas.cine.atlas_render import render_atlas_modes  # matplotlib/pyvista: only when rendering

    write_vtp_surfaces(atlas, atlas_dir / "surfaces", n_modes=n_modes)
    _paths, backend = render_atlas_modes(atlas, atlas_dir / "renders", n_modes=n_modes, backend=render_backend)
    log.info("atlas %s: renders written with %s", atlas.source, backend)


def describe(build: AtlasBuild) -> str:
    """One line naming each atlas built: ``auto (24 exams, 20 modes), manual (...)``."""
    parts = [f"{s} ({len(a.exam_ids)} exams, {a.n_components} modes)" for s, a in build.atlases.items()]
    return ", ".join(parts) or "none built"


def project_onto_atlas(shapes_path: PathLike, atlas_path: PathLike, out_path: PathLike) -> pd.DataFrame:
    """Scores of every complete shape of every source, projected onto a saved atlas; written to
    ``out_path`` (the atlas/scores schema) and returned.  Exams are not filtered by status."""
    shapes = pd.read_parquet(shapes_path)
    atlas = Atlas.load(atlas_path)
    frames = []
    for src in sorted(shapes["source"].unique()):
        s = shape_vectors(shapes, src, atlas.n_points)
        if not s.exam_ids:
            continue
        projected = Atlas(atlas.source, atlas.mean, atlas.modes, atlas.variance, atlas.variance_ratio,
                          atlas.project(s.points), s.exam_ids, atlas.n_points, atlas.grid, atlas.scaling,
                          atlas.total_variance, _rms_to_mean(atlas, s.points))
        frames.append(scores_frame(projected).assign(source=src))
    df = pd.concat(frames, ignore_index=True) if frames else SCORES.empty()
    write_table(df, out_path, SCORES)
    return df


def _rms_to_mean(atlas: Atlas, points: np.ndarray) -> np.ndarray:
    """RMS point distance (mm) of each (4N, 3) shape, aligned to the atlas mean, to that mean."""
    mean = atlas.mean_points()
    return np.array([np.sqrt(((atlas.align(p) - mean) ** 2).sum(axis=1).mean()) for p in points])
