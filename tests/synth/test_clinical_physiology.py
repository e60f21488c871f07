"""Calibration of the clinical subjects' physiology against the published figures it cites."""

import numpy as np
import pytest

from cmr_atlas.synth.clinical import physiology as phy
from cmr_atlas.synth.subjects import sample_subjects


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(20240)
    subjects = sample_subjects(rng, 2000, mi_fraction=0.1)
    return subjects, [phy.draw_physiology(rng, r, 1.5) for _, r in subjects.iterrows()]


def test_mbf_of_unaffected_subjects_matches_kellman(cohort):
    subjects, ph = cohort
    normal = np.array([p.perfusion_group == "normal" and not p.scar_segments for p in ph])
    stress = np.array([p.mbf_stress.mean() for p in ph])[normal]
    rest = np.array([p.mbf_rest.mean() for p in ph])[normal]
    assert stress.mean() == pytest.approx(2.25, abs=0.06)
    assert stress.std() == pytest.approx(0.59, rel=0.10)
    assert rest.mean() == pytest.approx(1.08, abs=0.03)
    assert rest.std() == pytest.approx(0.23, rel=0.10)
    assert np.all(np.array([p.mbf_reserve.min() for p in np.array(ph)[normal]]) > 0.8)


def test_ischaemic_territory_and_microvascular_disease_lower_stress_flow(cohort):
    _, ph = cohort
    normal = np.mean([p.mbf_stress.mean() for p in ph if p.perfusion_group == "normal"])
    mvd = [p for p in ph if p.perfusion_group == "microvascular"]
    isch = [p for p in ph if p.perfusion_group == "ischaemic"]
    assert len(mvd) > 40 and len(isch) > 100
    assert np.mean([p.mbf_stress.mean() for p in mvd]) < 0.8 * normal
    for p in isch[:50]:
        seg = np.array(phy.CORONARY_TERRITORIES[p.ischaemic_territory]) - 1
        other = np.setdiff1d(np.arange(16), seg)
        assert p.mbf_stress[seg].mean() < p.mbf_stress[other].mean()


def test_risk_factors_act_in_the_documented_direction(cohort):
    subjects, ph = cohort
    normal = np.array([p.perfusion_group == "normal" for p in ph])
    stress = np.array([p.mbf_stress.mean() for p in ph])
    dm = subjects["diabetes"].to_numpy() == 1
    assert stress[normal & dm].mean() < stress[normal & ~dm].mean() - 0.1


def test_territories_cover_the_16_segments_once():
    segs = sorted(s for t in phy.CORONARY_TERRITORIES.values() for s in t)
    assert segs == list(range(1, 17))


def test_hematocrit_t1_ecv_and_post_contrast(cohort):
    subjects, ph = cohort
    sex = subjects["sex"].to_numpy()
    hct = np.array([p.hematocrit for p in ph])
    assert hct[sex == "F"].mean() == pytest.approx(0.40, abs=0.01)
    assert hct[sex == "M"].mean() == pytest.approx(0.44, abs=0.01)
    t1 = np.array([p.native_t1_myo_ms for p in ph])
    assert 950 < np.percentile(t1, 5) and np.percentile(t1, 95) < 1070
    healthy = np.array([not p.scar_segments and not p.fibrosis_segments for p in ph])
    ecv = np.array([p.ecv.mean() for p in ph])
    assert ecv[healthy].mean() == pytest.approx(0.26, abs=0.015)
    scarred = [p for p in ph if p.scar_segments]
    assert all(p.ecv[np.array(p.scar_segments) - 1].min() >= 0.5 for p in scarred)
    # post-contrast T1 and the ECV formula invert each other
    post_myo = phy.post_contrast_t1_ms(1000.0, 0.27, 0.42, 0.5, 1.5)
    post_blood = phy.post_contrast_t1_ms(1550.0, 1 - 0.42, 0.42, 0.5, 1.5)
    assert 400 < post_myo < 600 and 250 < post_blood < 400
    assert phy.ecv_from_t1(1000.0, post_myo, 1550.0, post_blood, 0.42) == pytest.approx(0.27, rel=1e-9)


def test_unknown_field_strength_is_refused():
    subjects = sample_subjects(np.random.default_rng(1), 1)
    with pytest.raises(ValueError, match="field strength"):
        phy.draw_physiology(np.random.default_rng(1), subjects.iloc[0], 7.0)
