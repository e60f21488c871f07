"""DICOM SEG (highdicom) of the automated SAX masks, and back into annotation rows.

Export: one SEG per exam, phase (ED or ES) and source series -- highdicom refuses 2D+t in one SEG
(several frames share a position) and source images from several series (legacy stacks with one
series per slice give one SEG per slice).  The SEG is BINARY, references the SAX images of that
frame (read from the cohort's DICOM through :class:`~cmr_atlas.formats.dicom_index.CohortIndex`)
and describes its segments with SNOMED CT codes (:data:`SEGMENTS`); segment numbers equal
cmr-atlas's mask labels, and the RV segment is present only when the masks hold RV pixels.

Import: a SEG whose segments carry those codes (a reader's corrected export, or any SEG coded
alike) -> contours of each referenced SAX image (:func:`~cmr_atlas.formats.annotations.mask_contour_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from cmr_atlas import __version__
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations, assign_phases, mask_contour_rows
from cmr_atlas.formats.dicom_index import CohortIndex, ImageRef

ANATOMICAL_STRUCTURE = codes.cid7150.AnatomicalStructure  # SCT 91723000


@dataclass(frozen=True)
class Segment:
    label: int  # cmr-atlas mask value = segment number
    name: str  # cmr-atlas structure (key of cmr_atlas.core.imagecache.LABELS)
    segment_label: str
    code: Code  # SNOMED CT segmented property type


SEGMENTS: tuple[Segment, ...] = (
    Segment(1, "myocardium", "LV myocardium", Code("49848007", "SCT", "Myocardium of left ventricle")),
    Segment(2, "lv_cavity", "LV blood pool", Code("87878005", "SCT", "Left ventricle")),
    Segment(3, "rv_cavity", "RV blood pool", Code("53085002", "SCT", "Right ventricle")),
)
_BY_CODE = {s.code.value: s for s in SEGMENTS}
ALGORITHM_FAMILY = codes.cid7162.ArtificialIntelligence


def segment_descriptions(masks: np.ndarray, algorithm: str, version: str) -> list[hd.seg.SegmentDescription]:
    """Descriptions of segments 1..n: myocardium and LV always, RV when ``masks`` hold RV pixels."""
    n = 3 if (masks == 3).any() else 2
    ident = hd.AlgorithmIdentificationSequence(name=algorithm, family=ALGORITHM_FAMILY, version=version)
    return [
        hd.seg.SegmentDescription(
            segment_number=s.label, segment_label=s.segment_label,
            segmented_property_category=ANATOMICAL_STRUCTURE, segmented_property_type=s.code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=ident,
        )
        for s in SEGMENTS[:n]
    ]


def _sources(index: CohortIndex, exam: str, frame: int, n_slices: int) -> list[ImageRef]:
    refs = []
    for k in range(n_slices):
        try:
            ref = index.at(exam, "sax", k, frame)
        except KeyError:
            raise FormatError(f"exam {exam}: no SAX image at slice {k}, frame {frame} in the cohort index") from None
        if ref.file_frame is not None:
            raise FormatError(f"exam {exam}: SAX slice {k} is a frame of a multi-frame file (not supported)")
        refs.append(ref)
    return refs


def export_dicom_seg(masks: np.ndarray, index: CohortIndex, exam: str, frame: int, phase: str,
                     out_dir: str | Path, algorithm: str = "cmr-atlas", version: str = __version__,
                     series_number: int = 9000) -> list[Path]:
    """Write the SEG(s) of one exam's SAX masks ``(S, R, C)`` at ``frame`` (the ``phase`` frame).

    Files: ``<exam>_<phase>_seg.dcm``, or ``<exam>_<phase>_seg_<n>.dcm`` per source series when the
    stack spans several series.
    """
    masks = np.asarray(masks, dtype=np.uint8)
    if masks.ndim != 3 or masks.max(initial=0) > 3 or phase not in ("ED", "ES"):
        raise ValueError(f"masks must be (S, R, C) with labels 0..3 and phase ED or ES, got shape "
                         f"{masks.shape} and phase {phase!r}")
    refs = _sources(index, exam, frame, masks.shape[0])
    if refs[0].plane.shape != masks.shape[1:]:
        raise ValueError(f"exam {exam}: masks of {masks.shape[1:]} pixels, SAX images of {refs[0].plane.shape}")
    descriptions = segment_descriptions(masks, algorithm, version)
    series = list(dict.fromkeys(r.series_uid for r in refs))  # in slice order
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, uid in enumerate(series):
        ks = [k for k, r in enumerate(refs) if r.series_uid == uid]
        seg = hd.seg.Segmentation(
            source_images=[pydicom.dcmread(refs[k].path) for k in ks], pixel_array=masks[ks],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=series_number + n, sop_instance_uid=hd.UID(),
            instance_number=1, manufacturer="cmr-atlas", manufacturer_model_name=algorithm,
            software_versions=version, device_serial_number="0",
            series_description=f"cmr-atlas SAX masks {phase}", content_label=f"{phase}_MASKS",
            omit_empty_frames=False,
        )
        suffix = "" if len(series) == 1 else f"_{n}"
        paths.append(out_dir / f"{exam}_{phase}_seg{suffix}.dcm")
        seg.save_as(paths[-1])
    return paths


def _segment_map(seg: hd.seg.Segmentation, path: Path) -> dict[int, Segment]:
    """``{segment number: Segment}`` by the SNOMED CT property type of each segment."""
    out = {}
    for number in seg.segment_numbers:
        code = seg.get_segment_description(number).segmented_property_type
        if code.value not in _BY_CODE:
            raise FormatError(f"{path}: segment {number} has property type {code.scheme_designator} "
                              f"{code.value} ({code.meaning}); known: "
                              f"{[(s.code.value, s.code.meaning) for s in SEGMENTS]}")
        out[number] = _BY_CODE[code.value]
    return out


def read_dicom_seg(path: str | Path, index: CohortIndex, observer: str = "seg", phase: str | None = None,
                   n_points: int = 48, fill_phases: bool = True) -> Annotations:
    """Contours of each SAX image a SEG references; every referenced image must be in ``index``.

    The phase: ``phase``, else the ``ED_``/``ES_`` prefix of the ContentLabel cmr-atlas writes, else
    :func:`~cmr_atlas.formats.annotations.assign_phases` (not with ``fill_phases=False``: for a
    caller that pools the SEGs of one exam)."""
    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # pydicom/highdicom raise many types for a bad file
        raise FormatError(f"{path}: not a readable DICOM Segmentation ({type(exc).__name__}: {exc})") from None
    segments = _segment_map(seg, path)
    label = str(seg.get("ContentLabel", ""))
    if phase is None and label.split("_")[0] in ("ED", "ES"):
        phase = label.split("_")[0]  # as cmr-atlas's export labels it
    uids = [sop for _, _, sop in seg.get_source_image_uids()]
    refs = [index.ref(uid, path, "ReferencedSOPInstanceUID") for uid in uids]
    bad = [r for r in refs if r.view != "sax"]
    if bad:
        raise FormatError(f"{path}: references the exam's {bad[0].view} image {bad[0].sop_uid}; "
                          "SEG import takes SAX masks (orientation mismatch)")
    numbers = sorted(segments)
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=numbers, assert_missing_frames_are_empty=True)
    values = {segments[n].name: n for n in numbers}
    values.setdefault("myocardium", -1)
    values.setdefault("lv_cavity", -2)
    parts = []
    for ref, stack in zip(refs, pixels):
        labelled = np.zeros(stack.shape[:2], dtype=np.int16)
        for j, n in enumerate(numbers):
            labelled[stack[..., j] > 0] = n
        parts += mask_contour_rows(ref, labelled, values, observer, phase, n_points)
    ann = Annotations.from_rows(parts)
    return assign_phases(ann) if fill_phases else ann
