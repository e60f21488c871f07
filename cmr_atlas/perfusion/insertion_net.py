"""RV insertions of perfusion slices from a landmark heatmap network (issue 14).

The paper's network learns the RV insertion point as a label of its own; the rule of
:mod:`cmr_atlas.perfusion.sectors` derives it from the segmented cavities instead, and stays ~4
degrees off where the RV free wall thins to the epicardium (docs/perfusion.md).  Here cmr-atlas's
SAX landmark network (anterior and inferior RV insertion, LV centre; Xue et al. 2021) reads each
slice's *temporal maximum* after motion correction: both blood pools at their peak and the
myocardium darker, a cine-like contrast the cine network already half reads (4.3 deg zero-shot on
validation exams), and fine-tuned on such images of synthetic training exams it is published as
:data:`NETWORK` (``cmr-atlas train publish``; docs/models.md).

The insertion directions are taken from the LV centre of the slice's segmentation (the centroid of
cavity and myocardium, as the rule's), the network's own LV centre where the segmentation has no
LV.  A slice where the network finds either insertion below its absent threshold gets None, and
the pipeline falls back to the rule there (:func:`combine`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import LANDMARKS
from cmr_atlas.nets.heatmaps import (card_neighbour_slices, card_rotations, card_thresholds, card_zooms, decode_arrays,
                                     rotation_averaged_probs)
from cmr_atlas.nets import preprocess, registry
from cmr_atlas.nets.preprocess import Grid, from_net_px, to_net_px
from cmr_atlas.nets.runtime import prepare_model
from cmr_atlas.nets.samples import VIEW_CODES, Samples
from cmr_atlas.perfusion import prepare, quantify
from cmr_atlas.perfusion.sectors import Insertions

NETWORK = "lm_heatmap_sax_perfusion"
SEQUENCE = "perfusion"  # the card's calibrated thresholds are looked up under this sequence
NAMES: tuple[str, ...] = LANDMARKS["sax"]  # channel order of the SAX landmark networks
ANTERIOR, INFERIOR, CENTRE = "rv_insert_anterior", "rv_insert_posterior", "lv_centre"


def load(models_dir: str | Path, name: str = NETWORK) -> tuple[Callable[[np.ndarray], torch.Tensor], dict]:
    """``(run, card)`` of the shipped insertion network (checksum verified by the registry):
    ``run`` maps network inputs (B, n, n) to logits (B, 4, n, n) on the CPU in float32 (a
    handful of images per series)."""
    model, card = registry.load_model(name, models_dir)
    if card_neighbour_slices(card):  # a perfusion series has a few slices far apart: no stack to see
        raise registry.ModelFileError(f"{name}: its card asks for {card_neighbour_slices(card)} neighbouring "
                                      "slice(s) as input; the perfusion insertion network takes one slice")
    model = prepare_model(model.eval())

    def run(x: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None]).float()

    return run, card


def slice_image(frames: np.ndarray, n_pd: int) -> np.ndarray:
    """The network's input of one motion-corrected slice (frames (T, R, C), ``n_pd`` proton-density
    frames first): the maximum of each pixel over the dynamic frames."""
    return np.asarray(frames[n_pd:], float).max(axis=0)


def detect(run, card: dict, images: Sequence[np.ndarray], planes: Sequence[SlicePlane],
           labels: Sequence[np.ndarray], absent_threshold: float) -> list[Insertions | None]:
    """Insertions (slice pixels) of every slice from ``images`` (:func:`slice_image`, each on its
    ``planes``' pixel grid) through ``run`` (network inputs (B, n, n) -> logits), averaged over the
    card's test-time rotations; None where an insertion is absent (below the card's threshold for
    perfusion, else ``absent_threshold``).  ``labels``: the slices' class maps (the LV centre)."""
    grid = registry.card_grid(card)
    if not len(images):
        return []
    x = np.concatenate([preprocess.prepare(np.asarray(im, np.float32)[None], pl, grid) for im, pl in zip(images, planes)])
    probs = rotation_averaged_probs(run, x, card_rotations(card), card_zooms(card)).float().numpy()
    rc, present, _ = decode_arrays(probs, card_thresholds(card, SEQUENCE, "sax", NAMES, absent_threshold))
    out: list[Insertions | None] = []
    for pts, ok, pl, lab in zip(rc, present, planes, labels):
        found = dict(zip(NAMES, ok))
        if not (found[ANTERIOR] and found[INFERIOR]):
            out.append(None)
            continue
        px = dict(zip(NAMES, from_net_px(pts, pl, grid)))
        centre = quantify.lv_centre(lab)
        if centre is None:
            centre = px[CENTRE] if found[CENTRE] else None
        out.append(None if centre is None else Insertions(centre, px[ANTERIOR], px[INFERIOR]))
    return out


def _direction_mm(plane: SlicePlane, centre: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit patient-space direction and distance (mm) from ``centre`` to ``point`` (slice pixels)."""
    v = plane.pixel_to_patient(point) - plane.pixel_to_patient(centre)
    r = float(np.linalg.norm(v))
    return v / max(r, 1e-9), r


def fuse_conditions(stress: list[Insertions | None], stress_planes: Sequence[SlicePlane],
                    rest: list[Insertions | None], rest_planes: Sequence[SlicePlane]
                    ) -> tuple[list[Insertions | None], list[Insertions | None]]:
    """One slice imaged at stress and at rest (slice ``k`` of each stack, basal -> apical, on the
    same planes: the caller checks, as :func:`prepare.prepare_exam` does for the reserve) shows one
    pair of RV insertions.  Where the network found both insertions on both, each slice's anterior
    and inferior points move to the mean of the two conditions' directions (in patient space; each
    from its own LV centre, at its own distance), two independent looks at one anatomy: on the
    validation exams 2.49 -> 2.27 degrees from the truth, whose stress and rest directions differ by
    0.4 (docs/models.md).  Lists of other lengths come back unchanged."""
    if len(stress) != len(rest):
        return list(stress), list(rest)
    out_s, out_r = list(stress), list(rest)
    for k, (a, b) in enumerate(zip(stress, rest)):
        if a is None or b is None:
            continue
        pa, pb = stress_planes[k], rest_planes[k]
        moved = {}
        for end in ("anterior", "inferior"):
            (ua, ra), (ub, rb) = (_direction_mm(pa, a.centre, getattr(a, end)),
                                  _direction_mm(pb, b.centre, getattr(b, end)))
            u = ua + ub
            u /= max(float(np.linalg.norm(u)), 1e-9)
            moved[end] = tuple(pl.patient_to_pixel(pl.pixel_to_patient(ins.centre) + u * r)[0]
                               for pl, ins, r in ((pa, a, ra), (pb, b, rb)))
        out_s[k] = Insertions(a.centre, moved["anterior"][0], moved["inferior"][0])
        out_r[k] = Insertions(b.centre, moved["anterior"][1], moved["inferior"][1])
    return out_s, out_r


def combine(network: list[Insertions | None], rule: list[Insertions | None]) -> list[Insertions | None]:
    """The network's insertions where it found both, the rule's elsewhere."""
    return [n if n is not None else r for n, r in zip(network, rule)]


def truth_points(landmarks: pd.DataFrame, condition: str, slice_index: int, n_pd: int) -> dict[str, np.ndarray]:
    """The generator's landmarks of one slice at the heart's median breathing position (the grid
    the motion correction aligns to, and the generator's label maps'): each landmark's median
    (row, col) over the dynamic frames, for landmarks present in at least half of them."""
    g = landmarks[(landmarks["observer"] == "truth") & (landmarks["condition"] == condition)
                  & (landmarks["slice_index"] == slice_index) & (landmarks["frame"] >= n_pd)]
    if not len(g):
        return {}
    n_frames = g["frame"].nunique()
    by = g.groupby("landmark")
    med = by[["row_px", "col_px"]].median()
    return {str(n): med.loc[n].to_numpy(float) for n, c in by.size().items() if 2 * c >= n_frames}


def exam_samples(ex, grid: Grid) -> Samples:
    """Training samples of one synthetic exam (:func:`cmr_atlas.perfusion.synthetic.generate`):
    every slice of every quantifiable stress and rest series, its temporal maximum after the
    pipeline's motion correction with the generator's landmarks (:func:`truth_points`; absent
    ones NaN: an apical slice without RV contact is an explicit negative)."""
    slice_ids = sorted({k[1] for k in ex.labels})
    images, points = [], []
    for p in prepare.prepare_exam(ex.series):
        if not p.ok:
            continue
        for k, mc in enumerate(quantify.correct_slices(p)):
            plane = p.planes[k]
            truth = truth_points(ex.truth["landmarks"], p.condition, slice_ids[k], p.n_pd)
            pts = np.full((len(NAMES), 2), np.nan, np.float32)
            for j, name in enumerate(NAMES):
                if name in truth:
                    pts[j] = to_net_px(truth[name][None], plane, grid)[0]
            images.append(preprocess.prepare(slice_image(mc.frames, p.n_pd)[None], plane, grid)[0])
            points.append(pts)
    m = len(images)
    n = grid.size
    return Samples(np.asarray(images, np.float16).reshape(m, n, n), np.zeros(m, np.int32),
                   np.full(m, VIEW_CODES["sax"], np.int8), [ex.exam_id],
                   points=np.asarray(points, np.float32).reshape(m, len(NAMES), 2))


def _exam_job(job: tuple[int, int, Grid]) -> Samples:
    from cmr_atlas.perfusion import synthetic

    seed, index, grid = job
    return exam_samples(synthetic.generate(seed, index, observers=0), grid)


def build_data(out: str | Path, seed: int, start: int, n: int, grid: Grid, jobs: int = 1) -> dict:
    """A ``train data`` folder (``lm_sax.npz`` and ``data.json``) of exams ``start .. start+n-1`` of
    clinical cohort ``seed``, which ``cmr-atlas train model lm_heatmap_sax --data`` fine-tunes on;
    returns its ``data.json``."""
    todo = [(seed, i, grid) for i in range(start, start + n)]
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            parts = list(pool.imap(_exam_job, todo))
    else:
        parts = [_exam_job(t) for t in todo]
    out = Path(out)
    samples = Samples.concat(parts)
    samples.save(out / "lm_sax.npz")
    info = {"n_exams": len(parts), "extra_frames": 0, "images": {"seg": 0, "lm_lax": 0, "lm_sax": len(samples)},
            "channels_by_view": {"sax": list(NAMES)}, "landmark_grid": grid.to_dict(),
            "segmentation_grid": None, "protocol": "clinical", "sequences": [SEQUENCE],
            "source": "synthetic clinical exams in memory: each perfusion slice's temporal maximum after motion "
                      "correction (cmr_atlas.perfusion.insertion_net.build_data)",
            "cohort_seed": seed, "exam_indices": [start, start + n - 1]}
    (out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
