"""LGE landmark training data (issue 16: transfer learning from the cine networks to LGE): magnitude
and PSIR of the clinical exams with their truth landmarks, one exam per exam in a data folder."""

import json

import numpy as np
import pytest

from cmr_atlas.cine.landmarks import MODEL_LANDMARKS
from cmr_atlas.cine.training import LM_GRID, load_data
from cmr_atlas.nets.samples import VIEW_CODES
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.cine.training_lge import (RECONSTRUCTIONS, T1_MAPS, _exam_part, clinical_lge, clinical_t1map,
                                          lge_samples)
from cmr_atlas.core.vocab import CAVITY, MYO


@pytest.fixture(scope="module")
def lge(clinical_seed):
    return clinical_lge(clinical_seed, 0, 0.0, observers=1)


def test_both_reconstructions_of_the_same_planes_with_lge_truth(lge):
    images, truth = lge
    assert set(images) == set(RECONSTRUCTIONS)
    mag, psir = images["lge"], images["lge_psir"]
    assert mag.sax.shape == psir.sax.shape and mag.sax.shape[1] == 1 and mag.n_slices >= 8
    assert set(mag.lax) == {"lax_2ch", "lax_3ch", "lax_4ch"}
    assert (mag.sax >= 0).all() and (psir.sax < 0).any()  # PSIR keeps the sign, magnitude does not
    assert np.allclose(np.abs(psir.sax).mean(), mag.sax.mean(), rtol=0.2)
    assert set(truth["landmarks"]["sequence"]) == {"lge"}
    assert {"truth", "obs1"} <= set(truth["landmarks"]["observer"])


def test_samples_have_the_truth_points_on_both_reconstructions(lge):
    images, truth = lge
    s = {k: lge_samples(images[k], truth, np.random.default_rng(0)) for k in RECONSTRUCTIONS}
    sax = s["lge"]["lm_sax"]
    n_truth_slices = truth["landmarks"].query("observer == 'truth' and view == 'sax'")["slice_index"].nunique()
    # every slice once (one frame), those with landmarks carry them, the rest are explicit negatives
    assert len(sax) == images["lge"].n_slices
    assert np.isfinite(sax.points[:, 2, 0]).sum() == n_truth_slices
    np.testing.assert_array_equal(sax.points, s["lge_psir"]["lm_sax"].points)
    lax = s["lge"]["lm_lax"]
    assert sorted(lax.view) == sorted(VIEW_CODES[v] for v in ("lax_2ch", "lax_3ch", "lax_4ch"))
    assert lax.points.shape[1] == len(MODEL_LANDMARKS["lax"]) and np.isfinite(lax.points).all()
    assert ((lax.points > 0) & (lax.points < 127)).all()
    seg = s["lge"]["seg"]
    assert (seg.labels == MYO).any() and (seg.labels == CAVITY).any()


def test_one_exam_per_exam_in_a_data_folder(clinical_seed, tmp_path, monkeypatch, lge):
    import cmr_atlas.cine.training_lge as tl
    from cmr_atlas.cine.training import write_data

    monkeypatch.setattr(tl, "clinical_lge", lambda *a, **k: lge)  # no second render
    part = _exam_part(("lge", clinical_seed, 0, 0.0, LM_GRID, 0))
    for key, s in part.items():
        assert s.exam_ids == [lge[0]["lge"].exam_id] and (s.exam == 0).all()
    n_sax = lge[0]["lge"].n_slices
    assert len(part["lm_sax"]) == 2 * n_sax  # magnitude + PSIR
    write_data(tmp_path, [part, part], 0, {"sequences": ["lge"]})
    samples, info = load_data([tmp_path], "lm_sax")
    assert len(samples.exam_ids) == 2 and json.loads((tmp_path / "data.json").read_text())["sequences"] == ["lge"]


@pytest.fixture(scope="module")
def t1(clinical_seed):
    return clinical_t1map(clinical_seed, 0, 0.0, observers=1)


def test_t1_maps_native_and_post_of_the_same_sax_planes(t1):
    images, truth = t1
    assert set(images) == set(T1_MAPS)
    native, post = images["t1map_native"], images["t1map_post"]
    assert 1 <= native.n_slices <= 3 and native.sax.shape == post.sax.shape and not native.lax
    assert [p.position_mm.tolist() for p in native.sax_planes] == [p.position_mm.tolist() for p in post.sax_planes]
    # gadolinium shortens T1: the post-contrast map is darker than the native one
    assert np.median(post.sax[post.sax > 0]) < np.median(native.sax[native.sax > 0])
    assert set(truth["landmarks"]["sequence"]) == {"t1map"} and set(truth["landmarks"]["view"]) == {"sax"}


def test_t1_map_data_folder_has_sax_samples_only(clinical_seed, tmp_path, monkeypatch, t1):
    import cmr_atlas.cine.training_lge as tl

    monkeypatch.setattr(tl, "clinical_t1map", lambda *a, **k: t1)
    n = t1[0]["t1map_native"].n_slices
    # on the grid of the cine network a transfer starts from (here the paper's 1 mm)
    info = tl.build_lge_data(tmp_path, clinical_seed, 2, 1, 0.0, sequence="t1map", landmark_grid=Grid(1.0, 192))
    assert info["images"]["lm_sax"] == 2 * 2 * n and info["images"]["lm_lax"] == 0  # 2 exams x native + post
    assert not (tmp_path / "lm_lax.npz").exists() and info["sequences"] == ["t1map"]
    samples, info = load_data([tmp_path], "lm_sax")
    assert len(samples.exam_ids) == 2 and np.isfinite(samples.points).any()
    assert samples.images.shape[-1] == 192 and info["landmark_grid"] == {"spacing_mm": 1.0, "size": 192}


def test_lge_sax_samples_carry_the_neighbouring_slices(lge, clinical_seed, tmp_path, monkeypatch):
    import cmr_atlas.cine.training_lge as tl

    images, truth = lge
    one = lge_samples(images["lge"], truth, np.random.default_rng(0))["lm_sax"]
    three = lge_samples(images["lge"], truth, np.random.default_rng(0), sax_neighbour_slices=1)
    sax = three["lm_sax"]
    assert sax.images.shape == (len(one), 3, *one.images.shape[1:])
    np.testing.assert_allclose(sax.images[:, 1], one.images, atol=1e-5)  # centre channel: the slice itself
    np.testing.assert_array_equal(sax.points, one.points)
    # a middle slice's neighbours are images of the stack, not the slice again; past the base: zeros
    assert not np.allclose(sax.images[3, 0], sax.images[3, 1]) and not (sax.images[0, 0] != 0).any()
    assert three["lm_lax"].images.ndim == 3  # long-axis views have no stack: one channel
    monkeypatch.setattr(tl, "clinical_lge", lambda *a, **k: lge)
    info = tl.build_lge_data(tmp_path, clinical_seed, 1, 1, 0.0, sax_neighbour_slices=1)
    assert info["sax_neighbour_slices"] == 1
    samples, _ = load_data([tmp_path], "lm_sax")
    assert samples.images.shape[1] == 3
    with pytest.raises(ValueError, match="sax_neighbour_slices"):
        tl.build_lge_data(tmp_path, clinical_seed, 1, 1, 0.0, sax_neighbour_slices=-1)
