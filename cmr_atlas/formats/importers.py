"""One entry point for every importer: files of one format -> cmr-atlas annotation rows.

How each format's files are found and tied to an exam (folder name in the cohort):

=============  =====================================  ==========================================
format         paths                                  exam, frame
=============  =====================================  ==========================================
``cvi42``      ``.cvi42wsx`` files                    by SOPInstanceUID
``dicom_seg``  SEG files                              by referenced SOPInstanceUID
``cap``        folders, or files inside them, each    by geometry (SliceInfoFile planes); frame
               holding ``SliceInfoFile.txt`` and      = the ``time frame`` column
               ``GPFile*.txt``
``nifti``      ``.nii``/``.nii.gz`` label maps        by geometry (affine); 4D: every frame; 3D:
                                                      ``frame<N>`` in the name, 1-based as in
                                                      ACDC (``patient001_frame01_gt.nii.gz``)
=============  =====================================  ==========================================

:func:`import_to_folder` is what ``cmr-atlas annotations import`` and the workflow's
``import_annotations`` rule run: files -> an annotations folder (``contours.parquet`` +
``landmarks.parquet``, :mod:`.annotations`), the manual path's input.  A folder rather than one
parquet file because contours and landmarks are two tables with different columns.
"""

from __future__ import annotations

import re
from pathlib import Path

from cmr_atlas.core.shards import dicom_root, list_exam_folders
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations, assign_phases
from cmr_atlas.formats.cap import SLICE_INFO, read_cap
from cmr_atlas.formats.cvi42 import read_cvi42
from cmr_atlas.formats.dicom_index import CohortIndex, build_index
from cmr_atlas.formats.dicom_seg import read_dicom_seg
from cmr_atlas.formats.nifti import read_nifti_labels

FORMATS = ("cvi42", "cap", "nifti", "dicom_seg")


def _cap_sets(paths: list[Path]) -> list[tuple[list[Path], Path]]:
    """``(GPFiles, SliceInfoFile)`` per folder named by ``paths`` (folders or files in them)."""
    folders = sorted({p if p.is_dir() else p.parent for p in paths})
    out = []
    for folder in folders:
        info = folder / SLICE_INFO
        gp = sorted(folder.glob("GPFile*.txt"))
        if not info.is_file() or not gp:
            raise FormatError(f"{folder}: a CAP folder needs {SLICE_INFO} and GPFile*.txt files")
        out.append((gp, info))
    return out


def nifti_frame(path: Path) -> int | None:
    """0-based frame of a 3D label map named ``...frame<N>...`` (1-based N, ACDC), else None."""
    m = re.search(r"frame(\d+)", path.name)
    return int(m.group(1)) - 1 if m else None


def import_annotations(fmt: str, paths: list[str | Path], index: CohortIndex, observer: str,
                       labels: str | dict[str, int] = "acdc") -> Annotations:
    """Annotation rows of ``paths`` in format ``fmt`` (:data:`FORMATS`); ``labels`` for NIfTI.

    Phases missing from the files are assigned over all files of an exam together
    (:func:`~cmr_atlas.formats.annotations.assign_phases`), so separate ED and ES maps get both."""
    paths = [Path(p) for p in paths]
    if fmt == "cvi42":
        parts = [read_cvi42(p, index, observer) for p in paths]
    elif fmt == "dicom_seg":
        parts = [read_dicom_seg(p, index, observer, fill_phases=False) for p in paths]
    elif fmt == "cap":
        parts = [read_cap(gp, info, index, observer=observer) for gp, info in _cap_sets(paths)]
    elif fmt == "nifti":
        parts = [read_nifti_labels(p, index, frame=nifti_frame(p), labels=labels, observer=observer,
                                   fill_phases=False) for p in paths]
    else:
        raise ValueError(f"unknown annotation format {fmt!r} (known: {', '.join(FORMATS)})")
    return assign_phases(Annotations.concat(parts))  # phases of one exam's files together


# Files of a format inside a folder given as the source.
_PATTERNS = {"cvi42": ("*.cvi42wsx",), "cap": (SLICE_INFO, "GPFile*.txt"), "nifti": ("*.nii", "*.nii.gz"),
             "dicom_seg": ("*.dcm",)}


def annotation_files(fmt: str, source: str | Path) -> list[Path]:
    """The files of format ``fmt`` that ``source`` names: itself if a file, else those found
    under the folder, recursively (for CAP its ``SliceInfoFile.txt`` and ``GPFile*.txt`` files,
    which :func:`import_annotations` groups by folder)."""
    if fmt not in _PATTERNS:
        raise ValueError(f"unknown annotation format {fmt!r} (known: {', '.join(FORMATS)})")
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FormatError(f"{source}: no such file or folder")
    found = sorted({p for pattern in _PATTERNS[fmt] for p in source.rglob(pattern)})
    if not found:
        raise FormatError(f"{source}: no {fmt} files ({', '.join(_PATTERNS[fmt])}) in this folder")
    return found


def import_to_folder(fmt: str, paths: list[str | Path], cohort_dir: str | Path, out_dir: str | Path,
                     observer: str, labels: str | dict[str, int]) -> Annotations:
    """Import ``paths`` (files, or folders searched by :func:`annotation_files`) of format ``fmt``
    against the cohort's DICOM (``cohort_dir``, or its ``dicom/`` subfolder) and write the
    annotations folder ``out_dir``.  Missing paths raise :class:`FormatError`."""
    files = [f for p in paths for f in annotation_files(fmt, p)]
    folders = [f for f in list_exam_folders(cohort_dir) if f != "."]
    ann = import_annotations(fmt, files, build_index(dicom_root(cohort_dir), folders), observer, labels)
    ann.write(out_dir)
    return ann
