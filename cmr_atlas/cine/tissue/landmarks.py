"""SAX landmarks on LGE (magnitude and PSIR) and T1-map series, each with the network of its sequence.

The cine landmark networks find the landmarks on about half of the LGE images and a third of the T1
maps (docs/models.md); the paper's answer, followed here, is a network per sequence fine-tuned from
the cine one (:data:`NETWORKS`, shipped in ``resources/models`` with cards naming their
``sequences`` and ``views``).  Images come from ingest's series cache
(:mod:`cmr_atlas.core.seriescache`: the DICOM read once by :mod:`cmr_atlas.dicom.series_read`), run
through :func:`cmr_atlas.cine.inference.detect_landmarks` as a one-frame SAX stack, so decoding,
the absent rule and the pixel/patient mapping are the cine landmarks' own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cmr_atlas.cine.landmarks import LANDMARKS_AUTO
from cmr_atlas.core.config import default
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.core.tables import Column, TableSchema, register

if TYPE_CHECKING:
    from cmr_atlas.cine.inference import Models

# The networks (torch) are imported by the functions that run them: most shards of a cohort have no
# LGE or T1 map, and their tissue job then only writes empty tables (tests/test_architecture.py).

NETWORKS = {"lge": "lm_heatmap_sax_lge", "t1map": "lm_heatmap_sax_t1map"}  # sequence -> SAX landmark network
SEQUENCE_OF_KIND = {"lge": "lge", "lge_psir": "lge", "t1map": "t1map"}  # series kind -> network sequence

SERIES_INDEX = Column("series_index", "int", "the series' row of the exam's ingest `series` table "
                      "((exam_id, series_index) is the de-identified series key)", nullable=False)
KIND = Column("kind", "str", "series kind (cmr_atlas.dicom.series_types): lge, lge_psir or t1map", nullable=False)

TISSUE_LANDMARKS = register(TableSchema(
    name="tissue_landmarks", row="landmark per image of a SAX LGE or T1-map series",
    description=(
        "SAX landmarks (RV insertions, LV centre) on every slice of every SAX LGE (magnitude, PSIR) and "
        "T1-map (native, post-contrast) series, by the landmark network of the series' sequence "
        "(lm_heatmap_sax_lge, lm_heatmap_sax_t1map). The columns of `landmarks` (sequence = lge or "
        "t1map, view = sax, frame = 0: one image per slice) plus the series key, since an exam has "
        "several such series on the same slices (native and post maps, magnitude and PSIR)."
    ),
    columns=(*LANDMARKS_AUTO.columns, SERIES_INDEX, KIND),
))


def load_tissue_models(models_dir: str | Path, *, device: str, precision: str,
                       runtime: str | None = None) -> dict[str, Models]:
    """``{sequence: Models}`` with the SAX landmark network of each sequence of :data:`NETWORKS`
    found in ``models_dir`` (a sequence without one is absent: its series get ``no_landmark_network``)."""
    from cmr_atlas.cine.inference import Models
    from cmr_atlas.nets.runtime import load_net, pick_device, resolve_precision, resolve_runtime

    dev = pick_device(device)
    runtime = runtime or default("inference.runtime")
    rt = resolve_runtime(runtime, dev, precision)
    out = {}
    for sequence, name in NETWORKS.items():
        if not (Path(models_dir) / f"{name}.json").is_file():
            continue
        net, card = load_net(name, models_dir, dev, precision, rt, strict=runtime == "onnxruntime",
                             runtime_setting=runtime)
        dtype = None if rt == "onnxruntime" else resolve_precision(precision, dev)
        # no long-axis network: a card without views serves no long-axis view (inference.landmark_views)
        out[sequence] = Models(None, {}, "heatmap", {"sax": (net, card)}, dev, dtype, rt)
    return out


def series_images(s: SeriesImages) -> ExamImages:
    """A cached single-frame series as a SAX stack of one frame per plane (its planes in cache order)."""
    pixels = np.nan_to_num(np.asarray(s.pixels[:, :1], np.float32))
    return ExamImages(s.exam_id, pixels, list(s.planes), np.zeros(1))


def series_landmarks(s: SeriesImages, models: Models, *, absent_threshold: float, batch: int) -> pd.DataFrame:
    """``tissue_landmarks`` rows of one SAX LGE or T1-map series (slice_index = its plane index)."""
    from cmr_atlas.cine.inference import detect_landmarks

    lm = detect_landmarks(series_images(s), models, [0], absent_threshold=absent_threshold, batch=batch,
                          sequences={"sax": SEQUENCE_OF_KIND[s.kind]})
    return lm.assign(series_index=s.series_index, kind=s.kind)[list(TISSUE_LANDMARKS.column_names)]


def points_rc(lm: pd.DataFrame, slice_index: int) -> dict[str, np.ndarray]:
    """``{landmark: (row, col)}`` of one slice's present landmarks."""
    rows = lm[(lm["slice_index"] == slice_index) & lm["present"].astype(bool)]
    return {str(r.landmark): np.array([r.y_px, r.x_px], float) for r in rows.itertuples()}
