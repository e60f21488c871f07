"""The motion atlas (cine.motion) and its risk-factor AUCs beside the ED+ES modes (stats.motion_modes)."""

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.motion import N_PHASES, MotionAtlas, build_motion_atlas, motion_shape_rows, motion_tables
from cmr_atlas.stats.motion_modes import MOTION_AUC, motion_auc


def _cohort(n_exams=30, n=16, seed=0):
    """Trajectories = a mean beating ellipsoid + amplitude a (contraction depth, a motion mode) +
    size b (a shape mode), each exam rigidly rotated and moved (which the alignment removes)."""
    rng = np.random.default_rng(seed)
    g = int(np.sqrt(n))
    mu, th = np.meshgrid(np.linspace(0.05, 1.6, g), np.linspace(0, 2 * np.pi, g, endpoint=False), indexing="ij")
    unit = np.stack([np.sin(mu) * np.cos(th), np.sin(mu) * np.sin(th), 2 * np.cos(mu)], -1).reshape(-1, 3)
    phase = np.sin(np.pi * np.arange(N_PHASES) / (N_PHASES - 1))
    a, b = rng.normal(0, 1, n_exams), rng.normal(0, 1, n_exams)
    rows = []
    for e in range(n_exams):
        r = 25 + 2 * b[e]
        traj = np.stack([np.concatenate([(r - (6 + 2 * a[e]) * p) * unit, (r + 10 - (4 + a[e]) * p) * unit])
                         for p in phase])
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        rows.append(motion_shape_rows(f"E{e:02d}", "auto", traj @ q.T + rng.normal(0, 5, 3)))
    return pd.concat(rows, ignore_index=True), a, b


def test_motion_atlas_finds_the_motion_and_shape_modes(tmp_path):
    shapes, a, b = _cohort()
    atlas = build_motion_atlas(shapes, "auto", n_components=5)
    assert atlas.n_phases == N_PHASES and atlas.n_points == 16 and len(atlas.exam_ids) == 30
    # two generating factors: two modes carry (almost) all the variance and span both factors
    assert atlas.variance_ratio[:2].sum() > 0.99
    x = np.c_[np.ones(30), atlas.scores[:, :2]]
    for f in (a, b):
        resid = f - x @ np.linalg.lstsq(x, f, rcond=None)[0]
        assert 1 - resid.var() / f.var() > 0.98
    sc, ev = motion_tables(atlas)
    assert list(sc["exam_id"]) == atlas.exam_ids and sc["pc6"].isna().all()
    loaded = MotionAtlas.load(atlas.save(tmp_path / "m.npz"))
    assert np.allclose(loaded.trajectory(1, 2.0), atlas.trajectory(1, 2.0))


def test_incomplete_trajectories_are_left_out():
    shapes, _, _ = _cohort(n_exams=5)
    shapes = shapes[~((shapes["exam_id"] == "E01") & (shapes["phase_index"] == 3))]
    atlas = build_motion_atlas(shapes, "auto", n_components=3)
    assert "E01" not in atlas.exam_ids and len(atlas.exam_ids) == 4
    with pytest.raises(ValueError, match="at least 3"):
        build_motion_atlas(shapes, "auto", n_components=3, exam_ids=["E00", "E02"])


def test_motion_auc_sees_a_risk_factor_that_only_motion_carries():
    rng = np.random.default_rng(1)
    n = 160
    y = rng.integers(0, 2, n)
    ids = [f"E{i:03d}" for i in range(n)]
    edes = pd.DataFrame({"exam_id": ids, "source": "auto", **{f"pc{i}": rng.normal(size=n) for i in range(1, 4)}})
    motion = pd.DataFrame({"exam_id": ids, "source": "auto", "pc1": rng.normal(size=n) + 1.5 * y,
                           "pc2": rng.normal(size=n)})
    cov = pd.DataFrame({"exam_id": ids, "hypertension": y})
    t = motion_auc(edes, motion, cov, ["hypertension"], n_pcs=3, folds=5, n_bootstrap=0, seed=0)
    assert list(t.columns) == MOTION_AUC.column_names
    auc = t.set_index("modes")["auc"]
    assert auc["motion"] > 0.75 and auc["ed_es"] < 0.65 and auc["ed_es+motion"] > 0.7
    p = t.set_index("modes")["p_vs_ed_es"]
    assert np.isnan(p["ed_es"]) and p["motion"] < 0.01
