"""The cohort's cine images by SOPInstanceUID, with the (view, slice_index, frame) ingest gives them.

Annotation files name images by SOPInstanceUID (cvi42, DICOM SEG) or by geometry (CAP, NIfTI);
cmr-atlas's annotation rows name them by ``(exam folder, view, slice_index, frame)``.  This index is
built with ingest's own code -- :func:`cmr_atlas.dicom.scan.scan_folder` then
:func:`cmr_atlas.dicom.views.select_views` -- so slice 0 is the most basal SAX slice and frames are
in trigger-time order exactly as in ingest's tables and image cache.  Only the images of the
selected views are indexed (the SAX stack, the 2CH and 4CH cines).

The exam label is the cohort's top-level folder name (as in the annotation tables).  A folder with
several studies is indexed by its first study that has a SAX stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cmr_atlas.core.geometry import SlicePlane, angle_between_deg
from cmr_atlas.dicom.index import quiet_pydicom
from cmr_atlas.dicom.scan import ImageHeader, scan_folder
from cmr_atlas.dicom.views import CinePlane, select_views
from cmr_atlas.formats import FormatError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRef:
    """One indexed image: where ingest puts it, its geometry and its file."""

    exam: str  # top-level folder name of the cohort
    view: str  # sax, lax_2ch or lax_4ch
    slice_index: int  # SAX: 0 = most basal; 0 for LAX
    frame: int  # trigger-time order, 0-based
    plane: SlicePlane
    sop_uid: str
    series_uid: str
    study_uid: str
    path: Path
    file_frame: int | None  # frame within a multi-frame file


@dataclass
class CohortIndex:
    """Images of a cohort's selected views, by SOPInstanceUID and by position."""

    root: Path
    by_uid: dict[str, ImageRef] = field(default_factory=dict)
    by_key: dict[tuple[str, str, int, int], ImageRef] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)  # UIDs of the folders' other images -> exam

    @property
    def exams(self) -> list[str]:
        return sorted({r.exam for r in self.by_uid.values()})

    def add(self, ref: ImageRef) -> None:
        self.by_uid[ref.sop_uid] = ref
        self.by_key[(ref.exam, ref.view, ref.slice_index, ref.frame)] = ref

    def ref(self, sop_uid: str, source: str | Path, element: str = "") -> ImageRef:
        """The image of ``sop_uid``; :class:`FormatError` naming ``source`` when not in the cohort."""
        ref = self.lookup(sop_uid, source, element)
        if ref is None:
            raise FormatError(f"{source}: SOPInstanceUID {sop_uid} ({element}) is an image of exam "
                              f"{self.other[sop_uid]} outside its SAX/LAX cines")
        return ref

    def lookup(self, sop_uid: str, source: str | Path, element: str = "") -> ImageRef | None:
        """The image of ``sop_uid``; None for another image of an indexed folder (a localizer, a
        view ingest did not choose); :class:`FormatError` for a UID that is in no folder."""
        if sop_uid in self.by_uid:
            return self.by_uid[sop_uid]
        if sop_uid in self.other:
            return None
        where = f" ({element})" if element else ""
        raise FormatError(f"{source}: SOPInstanceUID {sop_uid}{where} is not an image of the cohort "
                          f"under {self.root}")

    def at(self, exam: str, view: str, slice_index: int, frame: int) -> ImageRef:
        """The image at a position; KeyError when there is none."""
        return self.by_key[(exam, view, int(slice_index), int(frame))]

    def images(self, exam: str, view: str | None = None) -> list[ImageRef]:
        """Images of one exam (one view), ordered by (view, slice_index, frame)."""
        refs = [r for r in self.by_uid.values() if r.exam == exam and (view is None or r.view == view)]
        return sorted(refs, key=lambda r: (r.view, r.slice_index, r.frame))

    def planes(self, exam: str) -> dict[tuple[str, int], SlicePlane]:
        """``{(view, slice_index): SlicePlane}`` of one exam."""
        return {(r.view, r.slice_index): r.plane for r in self.images(exam)}

    def n_frames(self, exam: str, view: str = "sax") -> int:
        return 1 + max((r.frame for r in self.images(exam, view)), default=-1)


def _refs(exam: str, view: str, slice_index: int, plane: CinePlane) -> list[ImageRef]:
    return [
        ImageRef(exam, view, slice_index, f, plane.plane, h.sop_uid, h.series_uid, h.study_uid,
                 Path(h.path), h.frame)
        for f, h in enumerate(plane.images)
    ]


def index_folder(root: Path, folder: str) -> tuple[list[ImageRef], list[str]]:
    """Indexed images of one top-level folder (none when no study has a SAX stack), and the
    SOPInstanceUIDs of its other images."""
    with quiet_pydicom():
        scan = scan_folder(Path(root) / folder)
    by_study: dict[str, list[ImageHeader]] = {}
    for h in scan.images:
        by_study.setdefault(h.study_uid, []).append(h)
    if len(by_study) > 1:
        log.warning("folder %s holds %d studies; indexing the first with a SAX stack", folder, len(by_study))
    for images in by_study.values():
        sel = select_views(images)
        if sel.failure:
            continue
        refs = [r for i, p in enumerate(sel.sax) for r in _refs(folder, "sax", i, p)]
        for view, p in sorted(sel.lax.items()):
            refs += _refs(folder, view, 0, p)
        chosen = {r.sop_uid for r in refs}
        return refs, [h.sop_uid for h in scan.images if h.sop_uid not in chosen]
    return [], [h.sop_uid for h in scan.images]


def build_index(root: str | Path, folders: list[str] | None = None) -> CohortIndex:
    """Index the exam folders of a cohort (default: every top-level folder of ``root``)."""
    root = Path(root)
    if folders is None:
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    index = CohortIndex(root)
    for folder in folders:
        refs, others = index_folder(root, folder)
        for ref in refs:
            index.add(ref)
        index.other.update(dict.fromkeys(others, folder))
    return index


def match_plane(planes: dict[tuple[str, int], SlicePlane], plane: SlicePlane, source: str | Path,
                element: str, tol_mm: float = 1.0, tol_deg: float = 2.0) -> tuple[str, int]:
    """The ``(view, slice_index)`` whose plane equals ``plane`` (same orientation within
    ``tol_deg``, ``plane``'s origin within ``tol_mm`` of it); :class:`FormatError` otherwise."""
    best, best_d = None, float("inf")
    for key, p in planes.items():
        if angle_between_deg(p.normal, plane.normal) > tol_deg:
            continue
        d = abs(float((plane.position_mm - p.position_mm) @ p.normal))
        if d < best_d:
            best, best_d = key, d
    if best is None or best_d > tol_mm:
        raise FormatError(f"{source}: {element} matches no SAX/LAX image plane of the exam "
                          f"(orientation or position differs; nearest {best_d:.1f} mm)")
    return best


def exam_of_planes(index: CohortIndex, planes: dict[object, SlicePlane], source: str | Path) -> str:
    """The exam whose image planes match every one of ``planes`` (files that name no exam: CAP);
    :class:`FormatError` when none or several do."""
    found = []
    for exam in index.exams:
        own = index.planes(exam)
        try:
            for key, p in planes.items():
                match_plane(own, p, source, f"plane {key}")
        except FormatError:
            continue
        found.append(exam)
    if len(found) != 1:
        what = "no exam" if not found else f"several exams {found}"
        raise FormatError(f"{source}: its planes match {what} of the cohort under {index.root}")
    return found[0]
