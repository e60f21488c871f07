"""``cmr-atlas atlas``: Procrustes + PCA atlases (auto and manual) from a cohort's shapes table.

Writes under ``--out`` (a results folder):

    atlas/scores.parquet               exam_id, source, rms_to_mean_mm, pc1..pc20
    atlas/explained_variance.parquet   source, component, variance, ratio, cumulative, n_exams
    atlas/<source>.npz                 the reusable atlas (layout: cmr_atlas.cine.atlas docstring)
    atlas/surfaces/<source>_*.vtp      mean and mean +- 2 SD of modes 1-3, one file per surface
    atlas/renders/<source>_mode<k>.png renders of modes 1-3 at ED and ES

``--project NPZ`` instead projects the shapes onto an existing atlas (scores only).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from cmr_atlas.cine.atlas import (
    EXPLAINED_VARIANCE,
    SCORES,
    Atlas,
    build_atlases,
    explained_variance_frame,
    scores_frame,
    shape_vectors,
    write_vtp_surfaces,
)
from cmr_atlas.core.tables import write_table

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shapes", required=True, help="cohort shapes table (shapes.parquet)")
    p.add_argument("--exams", help="exams table; only exams with status 'ok' enter the atlas")
    p.add_argument("--out", required=True, help="results folder (atlas/ is written inside)")
    p.add_argument("--n-components", type=int, default=20, help="modes kept (config atlas.n_components)")
    p.add_argument("--scaling", action="store_true", help="GPA with scaling (config atlas.scaling)")
    p.add_argument("--modes-to-render", type=int, default=3, help="modes written as VTP and PNG (0 = none)")
    p.add_argument("--render-backend", default="auto", choices=["auto", "pyvista", "matplotlib"])
    p.add_argument("--project", metavar="NPZ", help="project the shapes onto this atlas instead of building")


def run(args: argparse.Namespace) -> int:
    shapes = pd.read_parquet(args.shapes)
    out = Path(args.out) / "atlas"
    if args.project:
        atlas = Atlas.load(args.project)
        frames = []
        for src in sorted(shapes["source"].unique()):
            s = shape_vectors(shapes, src, atlas.n_points)
            if not s.exam_ids:
                continue
            sc = atlas.project(s.points)
            trained = Atlas(atlas.source, atlas.mean, atlas.modes, atlas.variance, atlas.variance_ratio,
                            sc, s.exam_ids, atlas.n_points, atlas.grid, atlas.scaling,
                            atlas.total_variance, _rms(atlas, s.points))
            frames.append(scores_frame(trained).assign(source=src))
        df = pd.concat(frames, ignore_index=True) if frames else SCORES.empty()
        write_table(df, out / "projected_scores.parquet", SCORES)
        print(f"projected {len(df)} exams onto {args.project}: {out / 'projected_scores.parquet'}")
        return 0
    exams = pd.read_parquet(args.exams) if args.exams and Path(args.exams).is_file() else None
    build = build_atlases(shapes, exams, n_components=args.n_components, scaling=args.scaling)
    for note in build.notes:
        log.info("atlas: %s", note)
    for src, ex in build.excluded.items():
        if ex:
            log.info("atlas %s: %d exams left out", src, len(ex))
    scores = [scores_frame(a) for a in build.atlases.values()]
    ev = [explained_variance_frame(a) for a in build.atlases.values()]
    write_table(pd.concat(scores, ignore_index=True) if scores else SCORES.empty(),
                out / "scores.parquet", SCORES)
    write_table(pd.concat(ev, ignore_index=True) if ev else EXPLAINED_VARIANCE.empty(),
                out / "explained_variance.parquet", EXPLAINED_VARIANCE)
    for src, atlas in build.atlases.items():
        atlas.save(out / f"{src}.npz")
        if args.modes_to_render > 0:
            write_vtp_surfaces(atlas, out / "surfaces", n_modes=args.modes_to_render)
            from cmr_atlas.report.figures import render_atlas_modes

            _paths, backend = render_atlas_modes(atlas, out / "renders", n_modes=args.modes_to_render,
                                                 backend=args.render_backend)
            log.info("atlas %s: renders written with %s", src, backend)
    print(f"atlas: {', '.join(f'{s} ({len(a.exam_ids)} exams, {a.n_components} modes)' for s, a in build.atlases.items()) or 'none built'} -> {out}")
    return 0


def _rms(atlas: Atlas, points):
    import numpy as np

    return np.array([np.sqrt(((atlas.align(p) - atlas.mean_points()) ** 2).sum(axis=1).mean()) for p in points])
