"""NIfTI: SAX images and label maps out (nibabel), label maps in (as contours).

Orientation written (that of ukbb_cardiac's DICOM-to-NIfTI conversion; nnU-Net takes any affine
and keeps it): voxel axes ``(i, j, k[, t])`` = (DICOM column, DICOM row, SAX slice base to apex
[, cine frame]), so ``volume[:, :, k, t] = image[k, t].T``; the affine maps ``(i, j, k)`` to RAS mm:

    LPS = IPP_0 + i * PixelSpacing[1] * row_cosine + j * PixelSpacing[0] * col_cosine + k * step
    RAS = diag(-1, -1, 1) * LPS

with ``step`` the mean vector between consecutive slice positions (a NIfTI affine holds one;
stacks with irregular gaps are approximated and logged).  Integer voxel indices are pixel centres,
as in :mod:`cmr_atlas.core.geometry`.  qform and sform both hold the affine (code 1, scanner).

Label values (:data:`LABEL_SETS`): cmr-atlas's masks use 1 myocardium, 2 LV cavity, 3 RV;
ACDC/M&Ms/nnU-Net cardiac tasks 1 RV, 2 myocardium, 3 LV; ukbb_cardiac 1 LV, 2 myocardium, 3 RV.

Import (:func:`read_nifti_labels`) accepts any voxel axis order or flips whose affine maps the
voxel grid onto the exam's SAX pixel grid; anything else is an orientation mismatch
(:class:`~cmr_atlas.formats.FormatError`).  Contours are the outlines of the label regions
(:func:`cmr_atlas.cine.segmentation.mask_contours`): LV ``endo`` = the LV cavity, ``epi`` = cavity
plus myocardium, ``rv_endo`` = the RV.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations, assign_phases, mask_contour_rows
from cmr_atlas.formats.dicom_index import CohortIndex

log = logging.getLogger(__name__)

LABEL_SETS: dict[str, dict[str, int]] = {
    "cmr_atlas": {"myocardium": 1, "lv_cavity": 2, "rv_cavity": 3},
    "acdc": {"rv_cavity": 1, "myocardium": 2, "lv_cavity": 3},  # also M&Ms, nnU-Net cardiac tasks
    "ukbb": {"lv_cavity": 1, "myocardium": 2, "rv_cavity": 3},  # ukbb_cardiac
}
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
POSITION_TOL_MM = 1.0  # an imported slice must lie this close to its SAX plane
AXIS_TOL = 0.02  # relative tolerance of the voxel-axis match (direction and spacing)


def _labels(labels: str | dict[str, int]) -> dict[str, int]:
    if isinstance(labels, str):
        if labels not in LABEL_SETS:
            raise ValueError(f"unknown label set {labels!r} (known: {sorted(LABEL_SETS)})")
        return LABEL_SETS[labels]
    return dict(labels)


def sax_affine(planes: list[SlicePlane]) -> np.ndarray:
    """RAS affine of a SAX stack (planes ordered slice 0 first) in the orientation above."""
    p0 = planes[0]
    if len(planes) > 1:
        pos = np.stack([p.position_mm for p in planes])
        step = (pos[-1] - pos[0]) / (len(planes) - 1)
        off = np.linalg.norm(pos - (pos[0] + np.arange(len(planes))[:, None] * step), axis=1).max()
        if off > POSITION_TOL_MM:
            log.warning("SAX slices are not evenly spaced (up to %.1f mm off): NIfTI affine approximates", off)
    else:
        step = p0.normal * (p0.thickness_mm or 1.0)
    a = np.eye(4)
    a[:3, 0] = p0.row_cosine * p0.pixel_spacing_mm[1]
    a[:3, 1] = p0.col_cosine * p0.pixel_spacing_mm[0]
    a[:3, 2] = step
    a[:3, 3] = p0.position_mm
    return LPS_TO_RAS @ a


def to_nifti_array(stack: np.ndarray) -> np.ndarray:
    """(S, T, R, C) or (S, R, C) cmr-atlas arrays -> (C, R, S, T) or (C, R, S)."""
    return np.transpose(stack, (3, 2, 0, 1)) if stack.ndim == 4 else np.transpose(stack, (2, 1, 0))


def write_nifti(stack: np.ndarray, planes: list[SlicePlane], path: str | Path,
                frame_ms: float | None = None) -> Path:
    """Write a SAX array (S, T, R, C) or (S, R, C) with its affine; ``frame_ms`` = time per frame."""
    img = nib.Nifti1Image(to_nifti_array(np.asarray(stack)), sax_affine(planes))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_xyzt_units("mm", "msec")
    if stack.ndim == 4 and frame_ms:
        zooms = list(img.header.get_zooms())
        img.header.set_zooms((*zooms[:3], float(frame_ms)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def relabel(masks: np.ndarray, labels: str | dict[str, int]) -> np.ndarray:
    """cmr-atlas masks (1 myo, 2 LV, 3 RV) with the values of label set ``labels``."""
    src, dst = LABEL_SETS["cmr_atlas"], _labels(labels)
    out = np.zeros_like(masks, dtype=np.uint8)
    for name, value in src.items():
        out[masks == value] = dst[name]
    return out


def export_sax_nifti(images: np.ndarray, planes: list[SlicePlane], out_dir: str | Path, exam_id: str,
                     masks: np.ndarray | None = None, labels: str | dict[str, int] = "cmr_atlas",
                     frame_ms: float | None = None, segmented: np.ndarray | None = None) -> list[Path]:
    """``<exam_id>_sa.nii.gz`` (images, float32) and ``<exam_id>_sa_seg.nii.gz`` (masks relabelled
    to ``labels``, uint8) from the image cache's SAX stack (S, T, R, C) and inference's masks.
    ``segmented (S, T)``: which images the masks cover (None: all); when not all, one 3D file per
    frame whose every slice was segmented, ``<exam_id>_sa_seg_frame<NN>.nii.gz`` (an ED + ES run,
    config ``inference.frames``), rather than a 4D file with unsegmented frames left empty."""
    out_dir = Path(out_dir)
    paths = [write_nifti(np.asarray(images, dtype=np.float32), planes, out_dir / f"{exam_id}_sa.nii.gz", frame_ms)]
    if masks is None:
        return paths
    if segmented is None or np.asarray(segmented, bool).all():
        paths.append(write_nifti(relabel(masks, labels), planes, out_dir / f"{exam_id}_sa_seg.nii.gz", frame_ms))
        return paths
    for f in np.flatnonzero(np.asarray(segmented, bool).all(axis=0)):
        paths.append(write_nifti(relabel(masks[:, f], labels), planes, out_dir / f"{exam_id}_sa_seg_frame{f:02d}.nii.gz"))
    return paths


# ---- import ------------------------------------------------------------------------------------

def _mismatch(path: Path, exam: str, why: str) -> FormatError:
    return FormatError(f"{path}: affine does not match the SAX stack of exam {exam} "
                       f"(orientation mismatch: {why})")


def _reorient(data: np.ndarray, affine: np.ndarray, planes: list[SlicePlane], path: Path, exam: str) -> np.ndarray:
    """The file's voxels as (C, R, S[, T]) on the exam's SAX grid, or an orientation mismatch."""
    ours = sax_affine(planes)
    m = np.linalg.solve(ours, affine)  # file voxel -> our voxel
    perm = np.rint(m[:3, :3])
    if not (np.abs(m[:3, :3] - perm).max() < AXIS_TOL and (np.abs(perm).sum(axis=0) == 1).all()
            and (np.abs(perm).sum(axis=1) == 1).all()):
        raise _mismatch(path, exam, "voxel axes are not the SAX column, row and slice directions")
    axes = [int(np.argmax(np.abs(perm[a]))) for a in range(3)]
    out = np.transpose(data, axes + list(range(3, data.ndim)))
    start = m[:3, 3].copy()
    for a in range(3):
        if perm[a, axes[a]] < 0:
            out = np.flip(out, axis=a)
            start[a] -= out.shape[a] - 1
    expected = (planes[0].shape[1], planes[0].shape[0], len(planes))
    if np.abs(start).max() > 0.1 or out.shape[:3] != expected:
        raise _mismatch(path, exam, f"grid {out.shape[:3]} at voxel offset {np.round(start, 2).tolist()}, "
                        f"SAX grid (cols, rows, slices) {expected}")
    inv = np.linalg.inv(m)
    for k, p in enumerate(planes):  # pixel (0, 0) of each slice where the file's own affine puts it
        voxel = np.rint(inv @ np.array([0.0, 0.0, k, 1.0]))
        d = float(np.linalg.norm((LPS_TO_RAS @ affine @ voxel)[:3] - p.position_mm))
        if d > POSITION_TOL_MM:
            raise _mismatch(path, exam, f"slice {k} lies {d:.1f} mm from SAX plane {k}")
    return out


def _load_labels(path: Path, frame: int | None, values: dict[str, int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(data (X, Y, Z, T), affine, cine frame of each t)`` of a 3D or 4D label map."""
    try:
        img = nib.load(path)
        data = np.rint(np.asanyarray(img.dataobj)).astype(np.int16)
    except Exception as exc:  # nibabel raises many types for a bad file
        raise FormatError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if data.ndim == 3:
        if frame is None:
            raise FormatError(f"{path}: a 3D label map needs the frame it was drawn on")
        data, frames = data[..., None], [int(frame)]
    elif data.ndim == 4:
        frames = list(range(data.shape[3]))
    else:
        raise FormatError(f"{path}: expected a 3D or 4D label map, got {data.ndim} dimensions")
    unknown = sorted(set(np.unique(data).tolist()) - {0, *values.values()})
    if unknown:
        raise FormatError(f"{path}: label values {unknown} are not in the label set {values}")
    return data, img.affine, frames


def _sax_grid(data: np.ndarray, affine: np.ndarray, index: CohortIndex, exam: str | None,
              path: Path) -> tuple[str, np.ndarray]:
    """``(exam, data on its SAX grid)``; without ``exam``, the one exam whose SAX stack fits."""
    for candidate in ([exam] if exam is not None else index.exams):
        planes = [r.plane for r in index.images(candidate, "sax") if r.frame == 0]  # slice order
        if not planes:
            raise FormatError(f"{path}: exam {candidate!r} has no SAX stack in the cohort index")
        try:
            return candidate, _reorient(data, affine, planes, path, candidate)
        except FormatError:
            if exam is not None:
                raise
    raise FormatError(f"{path}: the label map fits the SAX stack of no exam of the cohort under {index.root}")


def read_nifti_labels(path: str | Path, index: CohortIndex, exam: str | None = None, frame: int | None = None,
                      phase: str | None = None, labels: str | dict[str, int] = "acdc",
                      observer: str = "nifti", n_points: int = 48, fill_phases: bool = True) -> Annotations:
    """Contours of a label map aligned to an exam's SAX stack.

    ``exam`` (folder name) defaults to the cohort's exam whose SAX stack the map fits.  A 3D map
    is one frame: ``frame`` (0-based, trigger-time order) is required.  A 4D map holds every frame
    along its 4th axis; frames without labels are skipped.  ``labels`` names a :data:`LABEL_SETS`
    entry or maps ``lv_cavity``, ``myocardium`` (and ``rv_cavity``) to values.  Without ``phase``,
    phases come from :func:`~cmr_atlas.formats.annotations.assign_phases` (``fill_phases=False``
    leaves them null: for a caller that pools several files of one exam, e.g. ED and ES maps).
    """
    path, values = Path(path), _labels(labels)
    data, affine, frames = _load_labels(path, frame, values)
    exam, grid = _sax_grid(data, affine, index, exam, path)
    parts = []
    for t, f in enumerate(frames):
        for k in range(grid.shape[2]):
            slab = grid[:, :, k, t].T
            if slab.any():
                try:
                    ref = index.at(exam, "sax", k, f)
                except KeyError:
                    raise FormatError(f"{path}: exam {exam} has no SAX frame {f}") from None
                parts += mask_contour_rows(ref, slab, values, observer, phase, n_points)
    ann = Annotations.from_rows(parts)
    return assign_phases(ann) if fill_phases else ann
