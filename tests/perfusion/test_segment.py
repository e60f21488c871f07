"""Sub-pixel contours of class probabilities (cmr_atlas.perfusion.segment.contours) and the
generator's exact contours they are measured against (cmr_atlas.perfusion.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.perfusion import segment


def ring_probs(shape, centre, r_endo, r_epi, width=1.0):
    """(4, R, C) probabilities of a cavity disc inside a myocardial ring (smooth edges)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    r = np.hypot(rr - centre[0], cc - centre[1])
    inside_endo = 1 / (1 + np.exp((r - r_endo) / width))
    inside_epi = 1 / (1 + np.exp((r - r_epi) / width))
    p = np.zeros((4,) + shape)
    p[segment.CAVITY], p[segment.MYOCARDIUM] = inside_endo, inside_epi - inside_endo
    p[segment.BACKGROUND] = 1 - inside_epi
    return p


@settings(max_examples=25, deadline=None)
@given(st.floats(30, 50), st.floats(30, 50), st.floats(4, 15), st.floats(3, 8))
def test_contours_lie_on_the_half_probability_circle(cr, cc, r_endo, wall):
    p = ring_probs((80, 80), (cr, cc), r_endo, r_endo + wall)
    lines = segment.contours(p)
    for name, radius in (("endo", r_endo), ("epi", r_endo + wall)):
        line = lines[name]
        assert np.allclose(line[0], line[-1])  # closed
        d = np.hypot(line[:, 0] - cr, line[:, 1] - cc)
        assert np.abs(d - radius).max() < 0.1  # sub-pixel: the pixels are 1


def test_a_slice_without_cavity_has_no_endocardium():
    p = ring_probs((60, 60), (30, 30), 8, 14)
    p[segment.MYOCARDIUM] += p[segment.CAVITY]
    p[segment.CAVITY] = 0
    assert set(segment.contours(p)) == {"epi"}


def test_the_longest_closed_line_is_kept():
    p = ring_probs((80, 80), (40, 40), 10, 16)
    q = ring_probs((80, 80), (8, 8), 2, 3)  # a speck of cavity elsewhere
    p[segment.CAVITY] = np.maximum(p[segment.CAVITY], q[segment.CAVITY])
    endo = segment.contours(p)["endo"]
    assert np.hypot(*(endo.mean(axis=0) - 40)) < 0.5


def test_exact_contours_match_the_label_maps(perfusion_exam):
    """The generator's contours (mid plane) and its class fractions' half-lines (slice profile)
    describe the same boundary: within half a pixel on average (a contour in another pose, the
    heart displaced by breathing, lies pixels away)."""
    for key, frac in perfusion_exam.fractions.items():
        probs = np.concatenate([1 - frac.sum(axis=0, keepdims=True), frac])  # background, cavity, myo, RV
        lines, truth = segment.contours(probs), perfusion_exam.contours[key]
        assert set(truth) <= set(lines) | {"endo"}
        for surface in set(lines) & set(truth):
            d = np.hypot(*(lines[surface][:, None] - truth[surface][None]).transpose(2, 0, 1)).min(axis=1)
            assert d.mean() < 0.5, (key, surface, d.mean())  # pixels (~2.3 mm); apical cavities the most


def test_training_targets_agree_with_the_label_maps(perfusion_exam):
    """The network's hard training targets are the generator's class-map rule; the soft ones are
    probabilities (background what the foreground fractions leave)."""
    import torch

    from cmr_atlas.perfusion import synthetic, train

    frac = np.stack(list(perfusion_exam.fractions.values()))
    hard = train.hard_labels(torch.from_numpy(frac)).numpy()
    assert all((h == synthetic.label_map(f)).all() for h, f in zip(hard, frac))
    soft = train.soft_targets(torch.from_numpy(frac)).numpy()
    assert soft.shape[1] == 4 and np.allclose(soft.sum(1), 1.0, atol=1e-5) and soft.min() >= 0


def test_training_samples_carry_their_grid(tmp_path):
    """Sample files keep the grid they were made on (the card's input); files on different grids
    cannot be mixed."""
    from cmr_atlas.perfusion import train

    def write(name, spacing_mm, size, exams):
        path = tmp_path / name
        np.savez(path, images=np.zeros((2 * exams, 16, size, size), np.float16),
                 labels=np.zeros((2 * exams, 3, size, size), np.float16), exam=np.repeat(np.arange(exams), 2),
                 exam_ids=np.array([f"E{i}" for i in range(exams)]), seed=1, spacing_mm=spacing_mm, size=size)
        return str(path)

    a, b = write("a.npz", 1.0, 8, 2), write("b.npz", 1.0, 8, 3)
    s, seeds, grid = train.load_samples([a, b])
    assert (grid["spacing_mm"], grid["size"]) == (1.0, 8) and seeds == [1]
    assert len(s) == 10 and list(np.unique(s.exam)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="different grids"):
        train.load_samples([a, write("c.npz", 1.5, 6, 1)])


def test_training_samples_from_worker_processes_match_one_process(tmp_path, clinical_seed, perfusion_exam):
    """``--jobs`` generates exams side by side; the file holds what one process makes of them,
    numbered from 0 whatever the first exam index."""
    from cmr_atlas.perfusion import train

    grid = {**train.INPUT, "spacing_mm": 3.0, "size": 32}
    train.build_samples(clinical_seed, 1, str(tmp_path / "w.npz"), 3.0, 32, jobs=2, start=0)
    z = np.load(tmp_path / "w.npz")
    x, y = train.exam_samples(perfusion_exam, grid)
    assert list(z["exam_ids"]) == [perfusion_exam.exam_id] and (z["exam"] == 0).all()
    assert np.array_equal(z["images"], np.stack(x)) and np.array_equal(z["labels"], np.stack(y))
    assert float(z["spacing_mm"]) == 3.0 and int(z["size"]) == 32


def test_perfusion_training_runs_and_records_its_device(tmp_path):
    """A short CPU run writes weights and a card that says where it ran; asking for an absent GPU
    is a clear error, not a CUDA traceback."""
    import json

    import torch

    from cmr_atlas.perfusion import train

    rng = np.random.default_rng(0)
    path = tmp_path / "s.npz"
    lab = np.zeros((8, 3, 16, 16), np.float16)
    lab[:, 1, 4:12, 4:12] = 1.0
    lab[:, 0, 6:10, 6:10], lab[:, 1, 6:10, 6:10] = 1.0, 0.0
    np.savez(path, images=rng.standard_normal((8, 16, 16, 16)).astype(np.float16), labels=lab,
             exam=np.repeat(np.arange(4), 2), exam_ids=np.array([f"E{i}" for i in range(4)]), seed=1,
             spacing_mm=1.5, size=16)
    train.fit([str(path)], 0.2, str(tmp_path / "m"), base=4, seed=0, device="cpu", batch_size=4,
              steps_per_epoch=1, max_epochs=2)
    card = json.loads((tmp_path / "m" / "perf_seg.json").read_text())
    assert card["training"]["device"] == "cpu" and card["training"]["epochs_run"] == 2
    assert card["input"]["size"] == 16
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train.fit([str(path)], 0.2, str(tmp_path / "g"), base=4, seed=0, device="cuda")
