"""Landmarks on LGE (magnitude and PSIR; SAX and long-axis) and T1-map series, each with the network
of its sequence and view.

The cine landmark networks find the landmarks on about half of the LGE images and a third of the T1
maps (docs/models.md); the paper's answer, followed here, is a network per sequence fine-tuned from
the cine one (:data:`NETWORKS`, shipped in ``resources/models`` with cards naming their
``sequences`` and ``views``).  Images come from ingest's series cache
(:mod:`cmr_atlas.core.seriescache`: the DICOM read once by :mod:`cmr_atlas.dicom.series_read`), run
through :func:`cmr_atlas.cine.inference.detect_landmarks` as a one-frame SAX stack or a one-frame
long-axis view, so decoding, the absent rule and the pixel/patient mapping are the cine landmarks' own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cmr_atlas.cine.landmarks import LANDMARKS_AUTO
from cmr_atlas.core.columns import SERIES_INDEX
from cmr_atlas.core.config import default
from cmr_atlas.core.geometry import planes_match
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.core.tables import Column, TableSchema, register

if TYPE_CHECKING:
    from cmr_atlas.cine.inference import Models

# The networks (torch) are imported by the functions that run them: most shards of a cohort have no
# LGE or T1 map, and their tissue job then only writes empty tables (tests/test_architecture.py).

# (sequence, view network) -> landmark network; T1 maps are short-axis only
NETWORKS = {("lge", "sax"): "lm_heatmap_sax_lge", ("lge", "lax"): "lm_heatmap_lax_lge",
            ("t1map", "sax"): "lm_heatmap_sax_t1map"}
SEQUENCE_OF_KIND = {"lge": "lge", "lge_psir": "lge", "t1map": "t1map"}  # series kind -> network sequence

KIND = Column("kind", "str", "series kind (cmr_atlas.dicom.series_types): lge, lge_psir or t1map", nullable=False)
COMPANION = Column("companion_series_index", "int",
                   "series_index of the other reconstruction of the same LGE acquisition (PSIR for a magnitude "
                   "series, magnitude for a PSIR one) whose heatmaps were averaged with this series' "
                   "(config tissue.pair_reconstructions; the two series then have the same landmarks); "
                   "null: this series' images alone")

# the reconstructions of one LGE acquisition that are read together (magnitude <-> PSIR)
PAIRED_KIND = {"lge": "lge_psir", "lge_psir": "lge"}
ACQUISITION_TOL_S = 1.0  # the reconstructions of one acquisition carry its AcquisitionTime

TISSUE_LANDMARKS = register(TableSchema(
    name="tissue_landmarks", row="landmark per image of an LGE or T1-map series",
    description=(
        "Landmarks on every image of every LGE (magnitude, PSIR) and T1-map (native, post-contrast) "
        "series by the landmark network of the series' sequence and view: SAX RV insertions and LV "
        "centre (lm_heatmap_sax_lge, lm_heatmap_sax_t1map), and on long-axis LGE the mitral points "
        "and apex of the cine landmarks (lm_heatmap_lax_lge; view lax_2ch, lax_3ch or lax_4ch). The "
        "columns of `landmarks` (sequence = lge or t1map, frame = 0: one image per slice or view) plus "
        "the series key, since an exam has several such series on the same planes (native and post "
        "maps, magnitude and PSIR). The magnitude and PSIR series of one acquisition are read "
        "together (their heatmaps averaged) unless config tissue.pair_reconstructions is off."
    ),
    columns=(*LANDMARKS_AUTO.columns, SERIES_INDEX, KIND, COMPANION),
))


def load_tissue_models(models_dir: str | Path, *, device: str, precision: str,
                       runtime: str | None = None) -> dict[str, Models]:
    """``{sequence: Models}`` with the landmark networks of each sequence of :data:`NETWORKS` found in
    ``models_dir`` (``landmark`` keyed ``sax`` / ``lax``; a sequence without any is absent: its series
    get ``no_landmark_network``; a view without its network gets no rows)."""
    from cmr_atlas.cine.inference import Models
    from cmr_atlas.nets.runtime import load_net, pick_device, resolve_precision, resolve_runtime

    dev = pick_device(device)
    runtime = runtime or default("inference.runtime")
    rt = resolve_runtime(runtime, dev, precision)
    nets: dict[str, dict] = {}
    for (sequence, view_net), name in NETWORKS.items():
        if (Path(models_dir) / f"{name}.json").is_file():
            nets.setdefault(sequence, {})[view_net] = load_net(name, models_dir, dev, precision, rt,
                                                               strict=runtime == "onnxruntime", runtime_setting=runtime)
    dtype = None if rt == "onnxruntime" else resolve_precision(precision, dev)
    # without a "lax" network no long-axis view is served (inference.landmark_views)
    return {sequence: Models(None, {}, "heatmap", found, dev, dtype, rt) for sequence, found in nets.items()}


def series_images(s: SeriesImages, view: str = "sax") -> ExamImages:
    """A cached single-frame series as a SAX stack of one frame per plane (its planes in cache
    order), or for a long-axis ``view`` as that view's one-frame cine (its first plane)."""
    pixels = np.nan_to_num(np.asarray(s.pixels[:, :1], np.float32))
    if view == "sax":
        return ExamImages(s.exam_id, pixels, list(s.planes), np.zeros(1))
    return ExamImages(s.exam_id, np.zeros((0, 1, *pixels.shape[2:]), np.float32), [], np.zeros(1),
                      {view: pixels[0]}, {view: s.planes[0]})


def same_acquisition(a: SeriesImages, b: SeriesImages, tol_s: float = ACQUISITION_TOL_S) -> bool:
    """Whether ``a`` and ``b`` are reconstructions of one acquisition: the same planes in the same
    order (:func:`~cmr_atlas.core.geometry.planes_match`: slice, matrix and pixel size) and the same
    AcquisitionTime per plane within ``tol_s`` where both series have one."""
    if a.n_planes != b.n_planes or a.pixels.shape[2:] != b.pixels.shape[2:]:
        return False
    if not all(planes_match(p, q) for p, q in zip(a.planes, b.planes)):
        return False
    ta, tb = a.acquisition_time_s[:, 0], b.acquisition_time_s[:, 0]
    both = np.isfinite(ta) & np.isfinite(tb)
    return bool(np.all(np.abs(ta[both] - tb[both]) <= tol_s))


def reconstruction_pairs(series: list[SeriesImages]) -> dict[int, SeriesImages]:
    """``{series_index: the other reconstruction}`` of the LGE magnitude and PSIR series of one exam
    that pair one to one (:data:`PAIRED_KIND`, :func:`same_acquisition`).  A series with no
    candidate, or several (a repeated acquisition on the same planes without AcquisitionTime), is
    absent and is read alone."""
    found = {}
    for s in series:
        candidates = [c for c in series if c.kind == PAIRED_KIND.get(s.kind) and same_acquisition(s, c)]
        if len(candidates) == 1:
            found[s.series_index] = candidates[0]
    return {i: c for i, c in found.items() if c.series_index in found and found[c.series_index].series_index == i}


def series_landmarks(s: SeriesImages, models: Models, *, absent_threshold: float, batch: int,
                     view: str = "sax", companion: SeriesImages | None = None) -> pd.DataFrame:
    """``tissue_landmarks`` rows of one LGE or T1-map series of ``view`` (``sax``: slice_index = its
    plane index; a long-axis view: slice_index 0); none for a view without its network.  With a
    ``companion`` (the other reconstruction of the same acquisition, :func:`reconstruction_pairs`)
    the network's maps of both are averaged before decoding: the two differ in contrast and noise,
    and each finds landmarks the other misses (docs/tissue.md)."""
    from cmr_atlas.cine.inference import detect_landmarks, landmark_views

    served = "sax" in models.landmark if view == "sax" else view in landmark_views(models)
    if not served:
        return TISSUE_LANDMARKS.empty()
    companions = [] if companion is None else [series_images(companion, view)]
    lm = detect_landmarks(series_images(s, view), models, [0] if view == "sax" else [],
                          absent_threshold=absent_threshold, batch=batch, sequences={view: SEQUENCE_OF_KIND[s.kind]},
                          companions=companions)
    lm = lm.assign(series_index=s.series_index, kind=s.kind,
                   companion_series_index=None if companion is None else companion.series_index)
    return lm.astype({COMPANION.name: "Int64"})[list(TISSUE_LANDMARKS.column_names)]


def points_rc(lm: pd.DataFrame, slice_index: int) -> dict[str, np.ndarray]:
    """``{landmark: (row, col)}`` of one slice's present landmarks."""
    rows = lm[(lm["slice_index"] == slice_index) & lm["present"].astype(bool)]
    return {str(r.landmark): np.array([r.y_px, r.x_px], float) for r in rows.itertuples()}
