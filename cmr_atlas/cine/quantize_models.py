"""Int8 graphs of the cine U-Nets (:mod:`cmr_atlas.nets.quantize`), calibrated on their own
training cohort.

Calibration images are what inference feeds the network: whole frames of the views the card names
(SAX stacks every frame; the long-axis cines every frame), whitened and resampled to the card's
grid (:func:`cmr_atlas.nets.preprocess.prepare`), from the first exams of the cohort seed the card
says the network was trained on, generated in memory (:func:`cmr_atlas.cine.training.generated_exam`).
Never a validation or test seed: the quantisation ranges are fitted, and the accuracy check
(``benchmarks/accuracy.py --precision int8``) runs on held-out seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_atlas.cine.training import PROTOCOLS, data_parts, generated_exam
from cmr_atlas.nets.heatmaps import card_neighbour_slices
from cmr_atlas.nets.preprocess import prepare, slice_with_neighbours
from cmr_atlas.nets.registry import card_grid, load_model, routes

# the tasks of the cine U-Nets the pipeline runs on every exam (the SAX segmentation and the heatmap
# landmarks); the LGE/T1-map landmark networks and the perfusion U-Net keep float
CINE_TASKS = ("seg_sax", "lm_heatmap_lax", "lm_heatmap_sax")


def cine_unets(models_dir: str | Path) -> list[str]:
    """The networks of ``models_dir`` that cine inference loads for :data:`CINE_TASKS`: each task's
    default and the networks routed to it by sequence (:func:`cmr_atlas.nets.registry.routes`)."""
    return [name for task in CINE_TASKS if (Path(models_dir) / f"{task}.json").is_file()
            for name in routes(task, models_dir).names]


def training_cohorts(card: dict) -> list[tuple[str, int, float]]:
    """``(synthetic protocol, cohort seed, mi_fraction)`` of the first training part of each protocol
    the card records (parts without a ``protocol`` predate the clinical one: the legacy protocol)."""
    out: dict[str, tuple[str, int, float]] = {}
    for part in data_parts(card["training_data"]):
        protocol = part.get("protocol", "mesa")
        if protocol not in PROTOCOLS:
            raise ValueError(f"{card['name']}: no synthetic protocol {protocol!r}")
        out.setdefault(protocol, (protocol, int(part["cohort_seed"]), float(part.get("mi_fraction", 0.2))))
    return list(out.values())


def _frames(card: dict, protocol: str, cohort_seed: int, mi: float, n_exams: int) -> np.ndarray:
    """Every frame of the card's views of the first ``n_exams`` exams of one cohort, on its grid."""
    grid, views = card_grid(card), card.get("views", ["sax"])
    k = card_neighbour_slices(card)  # a SAX network that sees the neighbouring slices: they come along
    parts = []
    for index in range(n_exams):
        images, _, _ = generated_exam(cohort_seed, index, mi, protocol)
        if "sax" in views:
            parts += [slice_with_neighbours(images.sax, images.sax_planes, s, k, grid) if k
                      else prepare(images.sax[s], p, grid) for s, p in enumerate(images.sax_planes)]
        parts += [prepare(images.lax[v], images.lax_planes[v], grid) for v in views if v in images.lax]
    return np.concatenate(parts)


def calibration_images(card: dict, n_exams: int, n_images: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """``(images (N, n, n) float32 on the card's grid, or (N, 2k+1, n, n) for a SAX network
    with ``input.neighbour_slices`` k, description)``: ``n_images`` frames drawn at
    random, in equal shares per protocol, from the card's views of the first ``n_exams`` exams of
    each of its training cohorts."""
    rng = np.random.default_rng(seed)
    cohorts = training_cohorts(card)
    picked, described = [], []
    for protocol, cohort_seed, mi in cohorts:
        x = _frames(card, protocol, cohort_seed, mi, n_exams)
        k = min(len(x), n_images // len(cohorts))
        picked.append(x[np.sort(rng.choice(len(x), size=k, replace=False))])
        described.append({"protocol": protocol, "cohort_seed": cohort_seed, "exam_indices": [0, n_exams - 1],
                          "images": int(k), "of": int(len(x))})
    return np.concatenate(picked), {"views": list(card.get("views", ["sax"])), "parts": described}


def quantize_model(name: str, models_dir: str | Path, n_exams: int = 4, n_images: int = 256) -> Path:
    """Write ``<models_dir>/<name>.int8.onnx`` and its card entry; returns the graph's path."""
    from cmr_atlas.nets.onnx_export import onnx_bytes
    from cmr_atlas.nets.quantize import quantize_graph, write_int8

    model, card = load_model(name, models_dir)
    x, described = calibration_images(card, n_exams, n_images)
    graph = quantize_graph(onnx_bytes(model, card_grid(card).size), x)
    return write_int8(name, models_dir, card, graph, described)
