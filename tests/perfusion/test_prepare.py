"""Series preparation and the bad inputs that must end in a specific QC reason
(cmr_atlas.perfusion.prepare)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from cmr_atlas.perfusion import prepare as P


def test_pd_frames_are_the_leading_low_flip_frames():
    assert P.pd_frame_count(np.array([5, 5, 12, 12, 12.0])) == 2
    assert P.pd_frame_count(np.array([5, 5, 5, 15, 15, 15, 15, 5.0])) == 3  # a later low flip is not a PD frame
    assert P.pd_frame_count(np.full(10, 12.0)) == 0
    assert P.pd_frame_count(np.full(10, np.nan)) == 0


def test_pairs_stress_rest_with_their_aif_and_orders_basal_to_apical(perfusion_exam):
    prepared = P.prepare_exam(perfusion_exam.series)
    assert [p.condition for p in prepared] == ["stress", "rest"]
    px = perfusion_exam.truth["perfusion_pixels"]
    for p in prepared:
        assert p.ok and p.pair_reason is None
        assert p.aif is not None and p.aif.kind == "perfusion_aif" and p.aif.stress_rest == p.condition
        assert p.n_pd in (2, 3) and p.levels == ["basal", "mid", "apical"]
        # the generator writes the planes by SAX stack index, base (0) first
        first_levels = px[px.condition == p.condition].groupby("slice_index")["level"].first().tolist()
        assert first_levels[0] == "basal" and p.order == [0, 1, 2]
        assert P.basal_to_apical(p.series.planes[::-1]) == [2, 1, 0]
        assert 0.3 < P.dt_s(p.times_s(0)) < 1.5


def _reason(series):
    return [(p.condition, p.qc_reason, p.pair_reason) for p in P.prepare_exam(series)]


def test_bad_inputs_get_specific_reasons(perfusion_exam):
    base = perfusion_exam.series
    no_pd = copy.deepcopy(base)
    no_pd[0].flip_angle_deg[:] = np.nanmax(no_pd[0].flip_angle_deg)
    assert "no proton-density" in _reason(no_pd)[0][1]
    short = copy.deepcopy(base)
    short[0].n_frames[:] = 20
    assert "truncated bolus" in _reason(short)[0][1]
    no_aif = [s for s in base if not (s.kind == "perfusion_aif" and s.stress_rest == "stress")]
    assert _reason(no_aif)[0][1] == "missing AIF series" and _reason(no_aif)[1][1] is None
    single = copy.deepcopy(base)
    single[2].pixels, single[2].planes, single[2].n_frames = single[2].pixels[:1], single[2].planes[:1], single[2].n_frames[:1]
    assert "single slice" in dict((c, r) for c, r, _ in _reason(single))["rest"]
    moved = copy.deepcopy(base)
    moved[2].planes = [dataclasses.replace(pl, position_mm=pl.position_mm + 12.0 * pl.normal) for pl in moved[2].planes]
    reasons = _reason(moved)
    assert all(r is None and "geometry" in pr for _, r, pr in reasons)
