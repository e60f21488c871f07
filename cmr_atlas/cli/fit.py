"""``cmr-atlas fit``: fit the LV model to every exam and source of a guide-point table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.progress import Progress
from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.core.tables import read_table, write_table
from cmr_atlas.cine.lvmodel.exam import ExamFit, fit_exam
from cmr_atlas.cine.lvmodel.outputs import TABLES, tables_from_fits

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guide-points", required=True, type=Path, help="guide_points.parquet")
    parser.add_argument("--slices", required=True, type=Path,
                        help="slice-plane table (SLICE_PLANE_COLUMNS), e.g. slices.parquet")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the tables")
    parser.add_argument("--no-breath-hold", action="store_true",
                        help="skip the breath-hold (slice shift) correction")
    parser.add_argument("--shift-reference", choices=["sax_mean", "lax"], default="sax_mean",
                        help="gauge of the slice shifts: SAX shifts sum to zero and LAX views are "
                             "shifted too (default), or LAX views fixed")
    parser.add_argument("--vtp", action="store_true",
                        help="also write a VTP surface per exam, source and phase under OUT/vtp/")


def fit_all(guide_points: pd.DataFrame, slices: pd.DataFrame, breath_hold: bool = True,
            vtp_dir: Path | None = None, shift_reference: str = "sax_mean",
            ) -> dict[str, pd.DataFrame]:
    """Fit every (exam, source) of a guide-point table; returns the output tables."""
    fits: list[ExamFit] = []
    groups = guide_points.groupby(["exam_id", "source"], sort=True)
    progress = Progress(log, "fit", groups.ngroups, unit="exam fits")
    for (exam_id, source), gp in groups:
        try:
            planes = planes_by_slice(slices, exam_id)
        except (KeyError, ValueError) as exc:
            log.warning("exam %s: bad slice planes: %s", exam_id, exc)
            planes = {}
        f = fit_exam(gp, planes, str(exam_id), str(source), breath_hold=breath_hold,
                     shift_reference=shift_reference)
        log.info("fit %s/%s: %s%s in %.2f s, rms %s mm", exam_id, source, f.status,
                 f" ({f.qc_reason})" if f.qc_reason else "", f.seconds,
                 f"{f.rms_residual_mm:.2f}" if f.rms_residual_mm is not None else "-")
        if vtp_dir is not None and f.status != "failed":
            write_vtp(f, vtp_dir)
        fits.append(f)
        progress.update(failed=f.status == "failed")
    return tables_from_fits(fits)


def write_vtp(f: ExamFit, folder: Path) -> list[Path]:
    """One VTP per phase (endo and epi, patient coordinates, point array `surface` 0/1)."""
    import pyvista as pv

    from cmr_atlas.cine.lvmodel.measures import triangles

    folder.mkdir(parents=True, exist_ok=True)
    tris = triangles()
    out = []
    for phase in ("ED", "ES"):
        parts = []
        for si, surf in enumerate(("endo", "epi")):
            pts = f.surfaces.get((phase, surf))
            if pts is None:
                continue
            faces = np.hstack([np.full((len(tris), 1), 3), tris]).ravel()
            mesh = pv.PolyData(f.frame.to_patient(pts), faces)
            mesh.point_data["surface"] = np.full(len(pts), si, dtype=np.int32)
            parts.append(mesh)
        if not parts:
            continue
        merged = parts[0].merge(parts[1:]) if len(parts) > 1 else parts[0]
        path = folder / f"{f.exam_id}_{f.source}_{phase}.vtp"
        merged.save(path)
        out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    gp = read_table(args.guide_points, GUIDE_POINTS)
    slices = read_table(args.slices)
    tables = fit_all(gp, slices, breath_hold=not args.no_breath_hold,
                     vtp_dir=args.out / "vtp" if args.vtp else None,
                     shift_reference=getattr(args, "shift_reference", "sax_mean"))
    for name, df in tables.items():
        write_table(df, args.out / f"{name}.parquet", TABLES[name])
    m = tables["measures"]
    n_fail = int(((m["method"] == "model") & (m["status"] == "failed")).sum())
    log.info("fit: %d exam/source fits, %d failed; tables in %s",
             int((m["method"] == "model").sum()), n_fail, args.out)
    return 0
