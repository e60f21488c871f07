"""Per-shard exports of the workflow's results in core-lab formats (opt-in, config ``export``).

Each function takes one shard's files by explicit path, writes one folder per exam under
``out_dir`` and returns (and writes) a manifest table (:data:`EXPORT_MANIFEST`), the rule's declared
output:

* :func:`export_shard_dicom_seg` -- DICOM SEG of the automated SAX masks at ED and ES
  (:func:`~cmr_atlas.formats.dicom_seg.export_dicom_seg`).  A SEG copies the source images' patient
  and study attributes (a viewer needs them to place it beside its images), so these files are
  identified: the workflow writes them under ``export_identified/``, apart from the de-identified
  results.
* :func:`export_shard_nifti` -- NIfTI SAX images and masks from the image cache and inference's
  masks (:func:`~cmr_atlas.formats.nifti.export_sax_nifti`); no identifiers.
* :func:`export_shard_cap` -- CAP guide-point files of every guide-point source (auto, manual)
  (:func:`~cmr_atlas.formats.cap.write_cap`); no identifiers.

Files and folders are named by ``exam_id``; the SEG export finds an exam's DICOM folder by matching
ingest's keyed folder hashes (:func:`cmr_atlas.core.ids.folder_map`) against the shard's
folder list, so no table maps exam ids to folder names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.ids import folder_map
from cmr_atlas.core.columns import EXAM_ID
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.core.imagecache import load_exam_images, load_masks, load_segmented
from cmr_atlas.core.shards import dicom_root, read_folder_list
from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.cap import write_cap
from cmr_atlas.formats.dicom_index import CohortIndex, build_index
from cmr_atlas.formats.dicom_seg import export_dicom_seg
from cmr_atlas.formats.nifti import export_sax_nifti

EXPORT_MANIFEST = register(TableSchema(
    name="export/<format>/<shard>/manifest", row="exported file",
    description=("Files one per-shard export wrote (opt-in, config `export`); DICOM SEG's manifest "
                 "sits under export_identified/dicom_seg/<shard>/ with the files, which carry the "
                 "source images' patient attributes. Paths are relative to the manifest's folder."),
    columns=(
        EXAM_ID,
        Column("format", "str", "dicom_seg, nifti or cap", nullable=False),
        Column("part", "str", "ED or ES (dicom_seg), images, masks or masks_frameNN (nifti; one frame of an "
               "ED + ES run, config inference.frames), guide-point source (cap)"),
        Column("path", "str", "file path relative to the manifest's folder", nullable=False),
    ),
))

PathLike = str | os.PathLike
log = logging.getLogger(__name__)


def _manifest(rows: list[tuple[str, str, str, Path]], out_dir: Path, manifest_path: PathLike) -> pd.DataFrame:
    df = pd.DataFrame([(e, f, p, str(path.relative_to(out_dir))) for e, f, p, path in rows],
                      columns=EXPORT_MANIFEST.column_names)
    write_table(df, manifest_path, EXPORT_MANIFEST)
    return df


def _masks(masks_dir: Path, exam_id: str) -> np.ndarray | None:
    path = masks_dir / f"{exam_id}.npz"
    return load_masks(path) if path.is_file() else None


def export_shard_dicom_seg(cohort_dir: PathLike, folders_path: PathLike, exam_keys_path: PathLike, key: str,
                           phases_path: PathLike, masks_dir: PathLike, out_dir: PathLike,
                           manifest_path: PathLike) -> pd.DataFrame:
    """DICOM SEG of each exam's automated SAX masks at its ED and ES frames (``phases_path``):
    ``out_dir/<exam_id>/<exam_id>_<phase>_seg[_n].dcm``, referencing the exam's source images.
    Exams without masks (failed inference) are skipped, and so are exams whose images a SEG cannot
    reference (:class:`~cmr_atlas.formats.FormatError`, logged by exam_id)."""
    out_dir, masks_dir = Path(out_dir), Path(masks_dir)
    folders = read_folder_list(folders_path)
    by_exam = {e: f for f, e in folder_map(pd.read_parquet(exam_keys_path), folders, key).items()}
    phases = pd.read_parquet(phases_path)
    phases = phases[phases["exam_id"].isin(by_exam)]
    index = build_index(dicom_root(cohort_dir), sorted(by_exam[e] for e in phases["exam_id"]))
    rows = []
    for r in phases.itertuples(index=False):
        masks = _masks(masks_dir, r.exam_id)
        if masks is None:
            continue
        try:
            rows += _exam_segs(r.exam_id, by_exam[r.exam_id], masks, {"ED": r.ed_frame, "ES": r.es_frame},
                               index, out_dir)
        except FormatError as exc:  # e.g. a multi-frame SAX stack; the message names the folder: not logged
            log.warning("exam %s: no DICOM SEG (%s)", r.exam_id, type(exc).__name__)
    return _manifest(rows, out_dir, manifest_path)


def _exam_segs(exam_id: str, folder: str, masks: np.ndarray, frames: dict[str, int], index: CohortIndex,
               out_dir: Path) -> list[tuple[str, str, str, Path]]:
    """Manifest rows of one exam's SEGs, renamed from the folder name to ``exam_id``."""
    rows = []
    for phase, frame in frames.items():
        for path in export_dicom_seg(masks[:, int(frame)], index, folder, int(frame), phase, out_dir / exam_id):
            named = path.with_name(path.name.replace(folder, exam_id, 1))
            rows.append((exam_id, "dicom_seg", phase, path.rename(named)))
    return rows


def export_shard_nifti(exam_ids: list[str], cache_dir: PathLike, masks_dir: PathLike, out_dir: PathLike,
                       manifest_path: PathLike) -> pd.DataFrame:
    """NIfTI SAX images and automated masks per exam (``out_dir/<exam_id>/<exam_id>_sa[_seg].nii.gz``,
    the ukbb_cardiac layout; masks keep cmr-atlas's label values).  Exams without masks get images only."""
    out_dir, masks_dir = Path(out_dir), Path(masks_dir)
    rows = []
    for exam_id in exam_ids:
        images = load_exam_images(Path(cache_dir) / f"{exam_id}.npz")
        tt = images.trigger_times_ms
        frame_ms = float((tt[-1] - tt[0]) / (len(tt) - 1)) if len(tt) > 1 else None
        mask_path = masks_dir / f"{exam_id}.npz"
        masks, segmented = (load_masks(mask_path), load_segmented(mask_path)) if mask_path.is_file() else (None, None)
        paths = export_sax_nifti(images.sax, images.sax_planes, out_dir / exam_id, exam_id,
                                 masks=masks, frame_ms=frame_ms, segmented=segmented)
        # masks, or masks_frameNN for the per-frame files of an ED + ES run
        parts = ["images"] + ["masks" + p.name.removesuffix(".nii.gz").split("_sa_seg", 1)[1]
                              for p in paths[1:]]
        rows += [(exam_id, "nifti", part, p) for part, p in zip(parts, paths)]
    return _manifest(rows, out_dir, manifest_path)


def export_shard_cap(guide_points_path: PathLike, slices_path: PathLike, out_dir: PathLike,
                     manifest_path: PathLike) -> pd.DataFrame:
    """CAP guide-point files per exam and guide-point source: ``out_dir/<exam_id>/<source>/``
    (``SliceInfoFile.txt`` + ``GPFile_NNN.txt``, :mod:`cmr_atlas.formats.cap`; ``lv_centre`` has no
    CAP type and is left out)."""
    out_dir = Path(out_dir)
    gp, slices = pd.read_parquet(guide_points_path), pd.read_parquet(slices_path)
    rows = []
    for (exam_id, source), g in gp.groupby(["exam_id", "source"], sort=True):
        for path in write_cap(g, planes_by_slice(slices, exam_id), out_dir / exam_id / source):
            rows.append((exam_id, "cap", source, path))
    return _manifest(rows, out_dir, manifest_path)
