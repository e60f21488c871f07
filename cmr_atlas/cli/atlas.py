"""``cmr-atlas atlas``: Procrustes + PCA atlases (auto and manual) from a cohort's shapes table.

Writes under ``--out`` (a results folder):

    atlas/scores.parquet               exam_id, source, rms_to_mean_mm, pc1..pc20
    atlas/explained_variance.parquet   source, component, variance, ratio, cumulative, n_exams
    atlas/<source>.npz                 the reusable atlas (layout: cmr_atlas.cine.atlas docstring)
    atlas/surfaces/<source>_*.vtp      mean and mean +- 2 SD of modes 1-3, one file per surface
    atlas/renders/<source>_mode<k>.png renders of modes 1-3 at ED and ES

``--project NPZ`` instead projects the shapes onto an existing atlas (scores only, written to
atlas/projected_scores.parquet).  The work is done by :mod:`cmr_atlas.cine.atlas_outputs`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cmr_atlas.cine.atlas_outputs import describe, project_onto_atlas, write_atlas
from cmr_atlas.cine.atlas_render import RENDER_BACKENDS
from cmr_atlas.core.config import default


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shapes", required=True, help="cohort shapes table (shapes.parquet)")
    p.add_argument("--exams", help="exams table; only exams with status 'ok' enter the atlas")
    p.add_argument("--out", required=True, help="results folder (atlas/ is written inside)")
    p.add_argument("--n-components", type=int, default=default("atlas.n_components"),
                   help="modes kept (config atlas.n_components)")
    p.add_argument("--scaling", action="store_true", default=default("atlas.scaling"),
                   help="GPA with scaling (config atlas.scaling)")
    p.add_argument("--modes-to-render", type=int, default=default("atlas.modes_to_render"),
                   help="modes written as VTP and PNG, 0 = none (config atlas.modes_to_render)")
    p.add_argument("--render-backend", default=RENDER_BACKENDS[0], choices=RENDER_BACKENDS)
    p.add_argument("--project", metavar="NPZ", help="project the shapes onto this atlas instead of building")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) / "atlas"
    if args.project:
        df = project_onto_atlas(args.shapes, args.project, out / "projected_scores.parquet")
        print(f"projected {len(df)} exams onto {args.project}: {out / 'projected_scores.parquet'}")
        return 0
    build = write_atlas(args.shapes, args.exams, out / "scores.parquet", out / "explained_variance.parquet", out,
                        args.n_components, args.scaling, args.modes_to_render, args.render_backend)
    print(f"atlas: {describe(build)} -> {out}")
    return 0
