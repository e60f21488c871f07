"""Fit every exam and source of a guide-point table: the fit stage's per-shard loop and its files.

:func:`fit_exams` runs :func:`cmr_atlas.cine.lvmodel.exam.fit_exam` on each (exam, source) under the
runner's failure policy (:mod:`cmr_atlas.core.runner`): a fit that fails keeps its specific
``qc_reason`` (and its slice-summation volumes); an unexpected error becomes a failed fit with
``fit_error: <ExceptionType>``.  :func:`fit_shard` reads and writes the files of one shard, with
the ``exam_status`` rows (stage ``fit_<source>``, status and qc_reason as in ``measures``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.guidepoints import CYCLE_GUIDE_POINTS, GUIDE_POINTS
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.cine.lvmodel.cycle import CycleFit, fit_cycle
from cmr_atlas.cine.lvmodel.exam import ExamFit, StagedFit, fit_exam, fit_exam_staged, single_thread_blas
from cmr_atlas.cine.lvmodel.through_plane import fit_exam_through_plane
from cmr_atlas.cine.lvmodel.outputs import CYCLE_TABLES, TABLES, tables_from_cycles, tables_from_fits
from cmr_atlas.cine.motion import MOTION_SHAPES
from cmr_atlas.cine.volume_curves import VOLUME_CURVES, indices_table
from cmr_atlas.core.config import default
from cmr_atlas.core.runner import EXAM_STATUS, ExamFailure, run_exams, write_status
from cmr_atlas.core.tables import read_table, write_table

log = logging.getLogger(__name__)

STAGE = "fit"  # the stage of the runner's qc_reasons; exam_status rows say fit_<source>

Group = tuple[tuple[str, str], pd.DataFrame]  # ((exam_id, source), guide points)


def _fit_one(group: Group, slices: pd.DataFrame, breath_hold: bool, shift_reference: str,
             vtp_dir: Path | None, through_plane: bool = False,
             cycle: dict[tuple[str, str], pd.DataFrame] | None = None, lax_cache_dir: Path | None = None) -> ExamFit:
    (exam_id, source), gp = group
    try:
        planes = planes_by_slice(slices, exam_id)
    except (KeyError, ValueError) as exc:  # the type only: a message may quote values
        log.warning("exam %s: bad slice planes (%s)", exam_id, type(exc).__name__)
        planes = {}
    images = _lax_images_path(lax_cache_dir, str(exam_id), gp) if planes else None
    if through_plane and breath_hold:
        f = fit_exam_through_plane(gp, (cycle or {}).get((exam_id, source)), planes, str(exam_id), str(source),
                                   shift_reference=shift_reference)
    elif images is not None:  # the plain fit gives the registration its SAX shifts; the refit replaces it
        f = _registered(fit_exam_staged(gp, planes, str(exam_id), str(source), breath_hold=breath_hold,
                                        shift_reference=shift_reference), gp, planes, images,
                        breath_hold, shift_reference)
    else:
        f = fit_exam(gp, planes, str(exam_id), str(source), breath_hold=breath_hold,
                     shift_reference=shift_reference)
    log.info("fit %s/%s: %s%s in %.2f s, rms %s mm", exam_id, source, f.status,
             f" ({f.qc_reason})" if f.qc_reason else "", f.seconds,
             f"{f.rms_residual_mm:.2f}" if f.rms_residual_mm is not None else "-")
    if f.status == "failed":
        raise ExamFailure(f.qc_reason or "fit_failed", value=f)
    if vtp_dir is not None:
        write_vtp(f, vtp_dir)
    return f


def fit_exams(guide_points: pd.DataFrame, slices: pd.DataFrame, breath_hold: bool | None = None,
              vtp_dir: Path | None = None, shift_reference: str | None = None,
              through_plane: bool | None = None, cycle_guide_points: pd.DataFrame | None = None,
              lax_cache_dir: str | Path | None = None) -> list[ExamFit]:
    """One :class:`ExamFit` per (exam, source) of a guide-point table, in (exam, source) order.
    With ``lax_cache_dir`` (an image cache; not with ``through_plane``) the fits are those of
    :func:`register_lax_views` on the plain fits, made without measuring the plain fits the
    registration replaces.

    ``breath_hold``, ``shift_reference`` and ``through_plane`` default to the config's ``fit``
    defaults.  With ``through_plane`` the SAX slices' through-plane shifts come from the SAX/LAX
    contour crossings (:mod:`cmr_atlas.cine.lvmodel.through_plane`) of every frame of the
    (exam, source)'s ``cycle_guide_points``, else of its ED/ES guide points.
    """
    breath_hold = default("fit.breath_hold") if breath_hold is None else breath_hold
    shift_reference = shift_reference or default("fit.shift_reference")
    through_plane = default("fit.through_plane") if through_plane is None else through_plane
    cycle = (dict(tuple(cycle_guide_points.groupby(["exam_id", "source"])))
             if through_plane and cycle_guide_points is not None and len(cycle_guide_points) else None)
    groups: list[Group] = [((str(e), str(s)), gp) for (e, s), gp in
                           guide_points.groupby(["exam_id", "source"], sort=True)]
    lax_cache_dir = Path(lax_cache_dir) if lax_cache_dir is not None and not through_plane else None
    outcomes = run_exams(groups, lambda g: _fit_one(g, slices, breath_hold, shift_reference, vtp_dir,
                                                    through_plane, cycle, lax_cache_dir),
                         STAGE, log, exam_id=lambda g: g[0][0], unit="exam fits")
    fits = []
    for ((exam_id, source), _), o in zip(groups, outcomes):
        fits.append(o.value if o.value is not None else ExamFit(exam_id, source, "failed", o.qc_reason))
    return fits


def fit_all(guide_points: pd.DataFrame, slices: pd.DataFrame, breath_hold: bool | None = None,
            vtp_dir: Path | None = None, shift_reference: str | None = None) -> dict[str, pd.DataFrame]:
    """Fit every (exam, source) of a guide-point table; returns the output tables."""
    return tables_from_fits(fit_exams(guide_points, slices, breath_hold, vtp_dir, shift_reference))


def fit_status(fits: list[ExamFit]) -> pd.DataFrame:
    """``exam_status`` rows of the fits: stage ``fit_<source>``, status and qc_reason of the fit."""
    rows = [{"exam_id": f.exam_id, "stage": f"{STAGE}_{f.source}", "status": f.status, "qc_reason": f.qc_reason}
            for f in fits]
    return pd.DataFrame(rows, columns=EXAM_STATUS.column_names) if rows else EXAM_STATUS.empty()


def cycle_fits(fits: list[ExamFit], cycle_guide_points: pd.DataFrame, slices: pd.DataFrame) -> list[CycleFit]:
    """The per-frame fits (:func:`~cmr_atlas.cine.lvmodel.cycle.fit_cycle`) of every exam fit whose
    (exam, source) has cycle guide points; an unexpected numerical failure leaves that exam's
    model curve out (logged), never the shard."""
    cycle_guide_points = plain_strings(cycle_guide_points)
    groups = dict(tuple(cycle_guide_points.groupby(["exam_id", "source"]))) if len(cycle_guide_points) else {}
    out = []
    for f in fits:
        cgp = groups.get((f.exam_id, f.source))
        if cgp is None:
            continue
        try:
            planes = planes_by_slice(slices, f.exam_id)
            with single_thread_blas():
                c = fit_cycle(cgp, planes, f, keep_surfaces=True)
        except (KeyError, ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            log.warning("cycle %s/%s: failed (%s)", f.exam_id, f.source, type(exc).__name__)
            continue
        log.info("cycle %s/%s: %d frames in %.2f s%s", f.exam_id, f.source, len(c.frames), c.seconds,
                 f" ({c.qc_reason})" if c.qc_reason else "")
        out.append(c)
    return out


# exams whose every-frame guide points and surfaces are held at once: a 64-exam shard's guide
# points alone are 185 MiB (1.25 M rows), so the fit job peaked at 834 MiB holding them all
CYCLE_CHUNK = 8


def cycle_tables_by_chunk(fits: list[ExamFit], cycle: "CycleInputs", slices: pd.DataFrame,
                          chunk: int = CYCLE_CHUNK) -> dict[str, pd.DataFrame]:
    """:func:`~cmr_atlas.cine.lvmodel.outputs.tables_from_cycles` of :func:`cycle_fits` for the
    shard's fits, ``chunk`` exams at a time (their guide points made, fitted and turned into rows,
    then dropped): the same tables with a chunk's intermediates in memory instead of the shard's."""
    ids = list(dict.fromkeys(f.exam_id for f in fits))
    parts = []
    for i in range(0, len(ids), chunk):
        some = set(ids[i:i + chunk])
        cgp = cycle.guide_points(ids[i:i + chunk])
        parts.append(tables_from_cycles(cycle_fits([f for f in fits if f.exam_id in some], cgp, slices)))
    curves = [p["volume_curves"] for p in parts if len(p["volume_curves"])]
    shapes = [p["motion_shapes"] for p in parts if len(p["motion_shapes"])]
    curves = pd.concat(curves, ignore_index=True) if curves else VOLUME_CURVES.empty()
    return {"volume_curves": curves, "function_indices": indices_table(curves),
            "motion_shapes": pd.concat(shapes, ignore_index=True) if shapes else MOTION_SHAPES.empty()}


@dataclass
class CycleInputs:
    """Where a shard's every-frame automated guide points come from (inference outputs)."""

    exams_path: str | Path
    cache_dir: str | Path
    landmarks_path: str | Path
    qc_path: str | Path
    phases_path: str | Path
    masks_dir: str | Path

    def guide_points(self, exam_ids: list[str] | None = None) -> pd.DataFrame:
        """:data:`CYCLE_GUIDE_POINTS` of the shard's exams, or of ``exam_ids`` among them (failed
        exams have none)."""
        from cmr_atlas.cine.autoguide import run_cycle
        from cmr_atlas.core.shards import shard_exam_ids

        ids = shard_exam_ids(self.exams_path) if exam_ids is None else list(exam_ids)
        outcomes = run_cycle(ids, self.cache_dir, landmarks_path=self.landmarks_path,
                             qc_path=self.qc_path, phases_path=self.phases_path, masks_dir=self.masks_dir)
        frames = [o.value for o in outcomes if o.ok and len(o.value)]
        return pd.concat(frames, ignore_index=True) if frames else CYCLE_GUIDE_POINTS.empty()


def plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its string columns as Python objects: parquet gives Arrow-backed strings, whose
    comparisons and boolean selections cost several times more, and the fits select by view,
    phase, kind and surface hundreds of times per exam.  Equal values share one string object
    (a column costs a pointer per row); missing values are NaN, as ``astype(object)`` gives."""
    out = {}
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c]) and df[c].dtype != object:
            codes, uniques = pd.factorize(df[c])  # missing: code -1, the NaN appended last
            values = np.array([*uniques.astype(object), np.nan], dtype=object)
            out[c] = pd.Series(values[codes], index=df.index, dtype=object)
    return df.assign(**out) if out else df


def fit_shard(guide_points_path: str | Path, slices_path: str | Path, *, shapes_path: str | Path,
              model_frames_path: str | Path, slice_shifts_path: str | Path, measures_path: str | Path,
              wall_thickness_path: str | Path, status_path: str | Path, breath_hold: bool | None = None,
              shift_reference: str | None = None, vtp_dir: str | Path | None = None,
              cycle: CycleInputs | None = None, volume_curves_path: str | Path | None = None,
              function_indices_path: str | Path | None = None, motion_shapes_path: str | Path | None = None,
              all_frames: bool | None = None, through_plane: bool | None = None,
              lax_registration: bool | None = None) -> dict[str, pd.DataFrame]:
    """Fit one shard's guide points and write the five fit tables and the ``exam_status`` rows;
    with ``cycle`` also the per-frame tables ``volume_curves``, ``function_indices`` and
    ``motion_shapes`` (empty when ``all_frames``, default config ``fit.all_frames``, is off).
    ``through_plane`` (config ``fit.through_plane``): SAX through-plane shifts from the contour
    crossings (:mod:`cmr_atlas.cine.lvmodel.through_plane`); ``lax_registration`` (config
    ``fit.lax_registration``): landmark-only LAX views registered to the SAX stack on the images
    (:func:`register_lax_views`), when ``cycle`` gives the image cache and ``through_plane`` is off."""
    slices = plain_strings(read_table(slices_path))
    all_frames = default("fit.all_frames") if all_frames is None else all_frames
    through_plane = default("fit.through_plane") if through_plane is None else through_plane
    lax_registration = default("fit.lax_registration") if lax_registration is None else lax_registration
    # the per-frame guide points feed the through-plane estimate too: then they come first
    cgp = cycle.guide_points() if cycle is not None and all_frames and through_plane else None
    gp = plain_strings(read_table(guide_points_path, GUIDE_POINTS))
    # the images are at hand: register landmark-only LAX views
    lax_cache_dir = cycle.cache_dir if cycle is not None and lax_registration and not through_plane else None
    fits = fit_exams(gp, slices, breath_hold, Path(vtp_dir) if vtp_dir else None, shift_reference, through_plane, cgp,
                     lax_cache_dir)
    tables = tables_from_fits(fits)
    paths = {"shapes": shapes_path, "model_frames": model_frames_path, "slice_shifts": slice_shifts_path,
             "measures": measures_path, "wall_thickness": wall_thickness_path}
    for name, df in tables.items():
        write_table(df, paths[name], TABLES[name])
    if cycle is not None:
        if cgp is not None or not all_frames:
            per_frame = tables_from_cycles(cycle_fits(fits, CYCLE_GUIDE_POINTS.empty() if cgp is None else cgp, slices))
        else:
            per_frame = cycle_tables_by_chunk(fits, cycle, slices)
        for name, path in (("volume_curves", volume_curves_path), ("function_indices", function_indices_path),
                           ("motion_shapes", motion_shapes_path)):
            if path is not None:
                write_table(per_frame[name], path, CYCLE_TABLES[name])
        tables.update(per_frame)
    write_status(fit_status(fits), status_path)
    n_fail = sum(f.status == "failed" for f in fits)
    log.info("fit: %d exam/source fits, %d failed", len(fits), n_fail)
    return tables


def register_lax_views(fits: list[ExamFit], guide_points: pd.DataFrame, slices: pd.DataFrame, cache_dir: str | Path,
                       breath_hold: bool | None = None, shift_reference: str | None = None) -> list[ExamFit]:
    """Each fit again with its landmark-only LAX views registered to the SAX stack on the exam's
    cached images (:func:`~cmr_atlas.cine.lvmodel.lax_shifts.fit_exam_lax_registered`: the automated
    path); fits without such views, without images or that failed stay as they are."""
    breath_hold = default("fit.breath_hold") if breath_hold is None else breath_hold
    shift_reference = shift_reference or default("fit.shift_reference")
    groups = dict(tuple(guide_points.groupby(["exam_id", "source"]))) if len(guide_points) else {}
    out = []
    for f in fits:
        gp = groups.get((f.exam_id, f.source))
        path = _lax_images_path(Path(cache_dir), f.exam_id, gp) if gp is not None else None
        if f.status == "failed" or path is None:
            out.append(f)
            continue
        try:
            planes = planes_by_slice(slices, f.exam_id)
        except (KeyError, ValueError) as exc:
            log.warning("fit %s/%s: LAX registration failed (%s)", f.exam_id, f.source, type(exc).__name__)
            out.append(f)
            continue
        out.append(_registered(f, gp, planes, path, breath_hold, shift_reference))
    return out


def _lax_images_path(cache_dir: Path | None, exam_id: str, gp: pd.DataFrame) -> Path | None:
    """The exam's cached images if its guide points have landmark-only LAX views to register on them."""
    from cmr_atlas.cine.lvmodel.lax_shifts import landmark_only_views

    path = Path(cache_dir) / f"{exam_id}.npz" if cache_dir is not None else None
    return path if path is not None and path.exists() and landmark_only_views(gp) else None


def _registered(first: ExamFit | StagedFit, gp: pd.DataFrame, planes: dict, images_path: Path,
                breath_hold: bool, shift_reference: str) -> ExamFit:
    """The LAX-registered fit of ``first`` (the plain fit, finished or staged), or the plain fit
    if the registration or its refit fails."""
    from cmr_atlas.cine.lvmodel.lax_shifts import fit_exam_lax_registered
    from cmr_atlas.core.imagecache import load_exam_images

    plain = first.fit if isinstance(first, StagedFit) else first
    try:
        g = fit_exam_lax_registered(gp, planes, load_exam_images(images_path, stored=True), plain.exam_id, plain.source,
                                    breath_hold=breath_hold, shift_reference=shift_reference, first=first)
    except (KeyError, ValueError, OSError, np.linalg.LinAlgError) as exc:
        log.warning("fit %s/%s: LAX registration failed (%s)", plain.exam_id, plain.source, type(exc).__name__)
        g = None
    if g is not None and g.status != "failed":
        return g
    return first.finish() if isinstance(first, StagedFit) else first


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
