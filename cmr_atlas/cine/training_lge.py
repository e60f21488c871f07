"""Training and test data of LGE landmark networks (issue 16: transfer learning from the cine
networks to LGE, as Xue et al. 2021 did, measured against training from scratch on the same data).

The LGE of a synthetic clinical exam (:mod:`cmr_atlas.synth.clinical.lge`: one diastolic image per
plane, SAX stack and 2CH/3CH/4CH, magnitude and PSIR reconstructions of the same acquisition) is
rendered in memory on the exam's own random streams (the scout too, since the operator's TI comes
from it), so the images are the full exam's at a fraction of its cost.  Both reconstructions become
training samples with the same truth landmarks: an LGE network has to read either.  Data folders
have the layout of ``cmr-atlas train data`` (:func:`cmr_atlas.cine.training.write_data`), so
:func:`cmr_atlas.cine.train_models.train_model` trains on them unchanged.

Seeds used (disjoint from every cine training and test seed): LGE training 940000, held-out LGE
test 940001 (``benchmarks/landmarks_lge.py``); T1-map training 940002, held-out T1-map test 940003.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.landmarks import MODEL_VIEWS
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.cine.training import LM_GRID, SEG_GRID, check_landmark_grid, write_data
from cmr_atlas.cine.training_data import landmark_samples, segmentation_samples
from cmr_atlas.nets.samples import Samples
from cmr_atlas.core.imagecache import ExamImages

log = logging.getLogger(__name__)

RECONSTRUCTIONS = ("lge", "lge_psir")  # series kinds of the magnitude and the phase-sensitive image
T1_MAPS = ("t1map_native", "t1map_post")  # series kinds of the T1 maps


def clinical_lge(seed: int, index: int, mi_fraction: float,
                 observers: int = 0) -> tuple[dict[str, ExamImages], dict[str, pd.DataFrame]]:
    """The LGE of clinical exam ``index`` of cohort ``seed`` as ``{kind: ExamImages}`` for the
    magnitude (``lge``) and PSIR (``lge_psir``) reconstructions (SAX stack of one frame per slice,
    LAX views of one frame each) and its truth tables (``contours``, ``landmarks``, ...; sequence
    ``lge``; ``observers`` simulated observers on every image)."""
    from cmr_atlas.synth.clinical import cohort, lge, scout
    from cmr_atlas.synth.clinical import truth as CT

    rngs = cohort.exam_streams(seed, index)  # the full exam's streams: same heart, scout and LGE
    ctx = cohort.make_context(seed, index, mi_fraction, rngs)
    # the scout only for the operator's TI (its observers do not matter here: a separate stream)
    ti_ms = float(scout.render(ctx, rngs["scout"], 0).truth[CT.TI_SCOUT.name].operator_ti_ms.iloc[0])
    res = lge.render(ctx, rngs["lge"], ti_ms, observers)
    return images_by_kind(ctx.label, res.series, RECONSTRUCTIONS), res.truth


def clinical_t1map(seed: int, index: int, mi_fraction: float,
                   observers: int = 0) -> tuple[dict[str, ExamImages], dict[str, pd.DataFrame]]:
    """The native and post-contrast T1 maps (1-3 SAX slices) of clinical exam ``index`` of cohort
    ``seed`` as ``{kind: ExamImages}`` and their truth (sequence ``t1map``), as :func:`clinical_lge`."""
    from cmr_atlas.synth.clinical import cohort, t1map

    rngs = cohort.exam_streams(seed, index)
    ctx = cohort.make_context(seed, index, mi_fraction, rngs)
    res = t1map.render(ctx, rngs["t1map"], observers)
    return images_by_kind(ctx.label, res.series, T1_MAPS), res.truth


def images_by_kind(label: str, rendered: list, kinds: tuple[str, ...]) -> dict[str, ExamImages]:
    """``{kind: ExamImages}`` of rendered single-frame series (:class:`RenderedSeries`): the SAX
    planes stacked by slice index (one frame each), each LAX view its one image."""
    out = {}
    for kind in kinds:
        series = [s for s in rendered if s.kind == kind]
        sax = sorted(((k, p, im) for s in series if s.view == "sax"
                      for k, p, im in zip(s.slice_indices, s.planes, s.images)), key=lambda t: t[0])
        lax = {s.view: s for s in series if s.view != "sax"}
        out[kind] = ExamImages(label, np.stack([im for _, _, im in sax]).astype(np.float32),
                               [p for _, p, _ in sax], np.zeros(1),
                               {v: s.images[0].astype(np.float32) for v, s in lax.items()},
                               {v: s.planes[0] for v, s in lax.items()})
    return out


def lge_samples(images: ExamImages, truth: dict[str, pd.DataFrame], rng: np.random.Generator,
                landmark_grid: Grid = LM_GRID, sax_neighbour_slices: int = 0) -> dict[str, Samples]:
    """Training samples of one LGE reconstruction (keys of ``write_data``): every SAX slice
    (slices without landmarks as explicit negatives) and every LAX view, the one frame each.
    ``sax_neighbour_slices`` k > 0: each SAX landmark image carries the k slices either side as
    extra channels (:func:`~cmr_atlas.cine.training_data.landmark_samples`)."""
    # one frame per image and no ED/ES phase: "all" frames with one extra = frame 0
    out = {"seg": segmentation_samples(images, truth["contours"], SEG_GRID, rng, extra_frames=1)}
    for m in MODEL_VIEWS:
        out[f"lm_{m}"] = landmark_samples(images, truth["landmarks"], m, landmark_grid, rng, extra_frames=1,
                                          sax_frames="all",
                                          neighbour_slices=sax_neighbour_slices if m == "sax" else 0)
    return out


SEQUENCES = {"lge": RECONSTRUCTIONS, "t1map": T1_MAPS}  # each sequence's series kinds (samples of one exam)


def render_sequence(sequence: str, seed: int, index: int, mi_fraction: float, observers: int = 0):
    """:func:`clinical_lge` or :func:`clinical_t1map` by ``sequence`` (:data:`SEQUENCES`)."""
    return (clinical_lge if sequence == "lge" else clinical_t1map)(seed, index, mi_fraction, observers)


def _exam_part(job: tuple[str, int, int, float, Grid, int]) -> dict[str, Samples]:
    """Samples of every series kind of one exam's ``sequence`` (LGE magnitude and PSIR, or native
    and post-contrast T1 maps) as one exam (so exam-wise splits keep them together)."""
    sequence, seed, index, mi, landmark_grid, neighbours = job
    images, truth = render_sequence(sequence, seed, index, mi)
    rng = np.random.default_rng([seed, index])
    parts = [lge_samples(images[kind], truth, rng, landmark_grid, neighbours) for kind in SEQUENCES[sequence]]
    out = {}
    for key in parts[0]:
        if not any(len(p[key]) for p in parts):  # T1 maps: no long-axis images
            out[key] = parts[0][key]
            continue
        s = Samples.concat([p[key] for p in parts])
        s.exam[:] = 0
        s.exam_ids = s.exam_ids[:1]
        out[key] = s
    return out


def build_lge_data(out: str | Path, seed: int, n_exams: int, jobs: int, mi_fraction: float,
                   sequence: str = "lge", landmark_grid: Grid = LM_GRID, sax_neighbour_slices: int = 0) -> dict:
    """Write the training samples of ``sequence`` (``lge``: magnitude and PSIR; ``t1map``: native
    and post-contrast maps) of exams ``0..n_exams-1`` of clinical cohort ``seed`` to ``out`` (a
    ``train data`` folder, one exam per exam: an exam's images fall on the same side of a
    validation split); returns its ``data.json``.  Landmark samples on ``landmark_grid``: that of
    the cine network a transfer starts from (its card's ``input``); ``sax_neighbour_slices`` k > 0:
    SAX landmark images with the k slices either side as channels (recorded in ``data.json``)."""
    check_landmark_grid(landmark_grid)
    if sax_neighbour_slices < 0:
        raise ValueError(f"sax_neighbour_slices must be >= 0, not {sax_neighbour_slices}")
    todo = [(sequence, seed, i, mi_fraction, landmark_grid, sax_neighbour_slices) for i in range(n_exams)]
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            parts = list(pool.imap(_exam_part, todo))
    else:
        parts = [_exam_part(t) for t in todo]
    render = "clinical_lge: LGE magnitude and PSIR" if sequence == "lge" else "clinical_t1map: native and post T1 maps"
    provenance = {"source": f"synthetic, generated in memory (cmr_atlas.cine.training_lge.{render} of the "
                            "clinical exams)", "protocol": "clinical",
                  "sequences": [sequence], "reconstructions": list(SEQUENCES[sequence]), "cohort_seed": seed,
                  "exam_indices": [0, n_exams - 1], "mi_fraction": mi_fraction}
    keys = [k for k in parts[0] if any(len(p[k]) for p in parts)]
    if len(keys) == len(parts[0]):
        return write_data(out, parts, 0, provenance, landmark_grid, sax_neighbour_slices)
    if sax_neighbour_slices:
        provenance = {**provenance, "sax_neighbour_slices": sax_neighbour_slices}
    return _write_present(out, parts, keys, provenance, landmark_grid)


def _write_present(out: str | Path, parts: list[dict[str, Samples]], keys: list[str], provenance: dict,
                   landmark_grid: Grid) -> dict:
    """:func:`write_data` for data without some keys (T1 maps have no long-axis images): the
    present keys' ``.npz`` and a ``data.json`` whose ``images`` counts 0 for the others."""
    out = Path(out)
    counts = dict.fromkeys(parts[0], 0)
    for key in keys:
        samples = Samples.concat([p[key] for p in parts])
        samples.save(out / f"{key}.npz")
        counts[key] = len(samples)
    info = {"n_exams": len(parts), "extra_frames": 0, "images": counts, "landmark_grid": landmark_grid.to_dict(),
            "segmentation_grid": SEG_GRID.to_dict(), **provenance}
    (out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
