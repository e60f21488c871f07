"""Automated guide points: CNN masks and landmarks -> the guide-point table (``source = auto``).

At ED and ES, each SAX slice whose mask passes QC gives an endocardial contour (outline of the
cavity) and an epicardial contour (outline of cavity + myocardium), traced by marching squares
on the lightly smoothed mask, resampled to ``n_points`` equally spaced points and mapped to
patient coordinates through the slice plane.  Landmarks present at ED/ES (LAX frames matched by
cycle fraction) are added with ``weight = confidence``; contour points get weight 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.cine.segmentation import lax_frame, mask_contours
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.core.progress import Progress
from cmr_atlas.core.vocab import CAVITY, MYO

# QC flags that exclude a slice from the contours ("empty" slices simply have no LV)
EXCLUDING_FLAGS = ("small_cavity", "no_myocardium", "fragmented_cavity", "fragmented_myocardium",
                   "cavity_outside_myocardium")


def _excluded(flag: str) -> bool:
    return flag == "empty" or any(f in EXCLUDING_FLAGS for f in str(flag).split(";") if f)


def auto_guide_points(images: ExamImages, masks: np.ndarray, phases: dict, landmarks: pd.DataFrame,
                      qc: pd.DataFrame | None = None, n_points: int = 48) -> pd.DataFrame:
    """Guide-point rows of one exam (columns of :data:`GUIDE_POINTS`)."""
    eid = images.exam_id
    flags = {} if qc is None else {(int(r.slice_index), int(r.frame)): str(r.flag or "")
                                   for r in qc.itertuples()}
    rows: list[dict] = []
    for phase, frame in (("ED", int(phases["ed_frame"])), ("ES", int(phases["es_frame"]))):
        for s, plane in enumerate(images.sax_planes):
            m = masks[s, frame]
            if _excluded(flags.get((s, frame), "")) or not (m == CAVITY).any():
                continue
            for surface, region in (("endo", m == CAVITY), ("epi", (m == CAVITY) | (m == MYO))):
                rc = mask_contours(region, n_points)
                if rc is None:
                    continue
                xyz = plane.pixel_to_patient(rc)
                for i, p in enumerate(xyz):
                    rows.append({"exam_id": eid, "source": "auto", "phase": phase, "frame": frame,
                                 "view": "sax", "slice_index": s, "kind": "contour", "surface": surface,
                                 "landmark": None, "point_index": i, "x_mm": p[0], "y_mm": p[1],
                                 "z_mm": p[2], "weight": 1.0})
        lm = landmarks[(landmarks["exam_id"] == eid) & landmarks["present"]] if len(landmarks) else landmarks
        for view in ("sax", "lax_2ch", "lax_4ch"):
            if view == "sax":
                f = frame
            elif view in images.lax:
                f = lax_frame(frame, images.n_frames, images.lax[view].shape[0])
            else:
                continue
            sel = lm[(lm["view"] == view) & (lm["frame"] == f)] if len(lm) else lm
            for r in sel.itertuples():
                rows.append({"exam_id": eid, "source": "auto", "phase": phase, "frame": f, "view": view,
                             "slice_index": int(r.slice_index), "kind": "landmark", "surface": None,
                             "landmark": r.landmark, "point_index": 0, "x_mm": r.x_mm, "y_mm": r.y_mm,
                             "z_mm": r.z_mm, "weight": float(r.confidence)})
    return pd.DataFrame(rows, columns=GUIDE_POINTS.column_names)


def run_shard(exam_ids: list[str], cache_dir, infer_dir, out_path, n_points: int = 48) -> dict[str, str]:
    """Guide points (source auto) of a shard from its inference outputs; one bad exam is skipped."""
    import logging
    from pathlib import Path

    from cmr_atlas.core.imagecache import load_exam_images, load_masks
    from cmr_atlas.core.tables import read_table, write_table

    log = logging.getLogger(__name__)
    infer_dir = Path(infer_dir)
    phases = read_table(infer_dir / "phases.parquet").set_index("exam_id")
    lms = read_table(infer_dir / "landmarks.parquet")
    qcs = read_table(infer_dir / "segmentation_qc.parquet")
    frames, status = [], {}
    progress = Progress(log, "auto guide points", len(exam_ids))
    for eid in exam_ids:
        try:
            if eid not in phases.index:
                raise ValueError("no inference result")
            images = load_exam_images(Path(cache_dir) / f"{eid}.npz")
            masks = load_masks(infer_dir / "masks" / f"{eid}.npz")
            frames.append(auto_guide_points(images, masks, phases.loc[eid].to_dict(),
                                            lms[lms["exam_id"] == eid], qcs[qcs["exam_id"] == eid], n_points))
            status[eid] = "ok"
        except Exception as exc:
            log.error("auto guide points failed for %s: %s: %s", eid, type(exc).__name__, exc)
            status[eid] = f"{type(exc).__name__}: {exc}"
        progress.update(failed=status[eid] != "ok")
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else GUIDE_POINTS.empty()
    write_table(df, out_path, GUIDE_POINTS)
    return status
