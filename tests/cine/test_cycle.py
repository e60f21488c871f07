"""The LV model at every frame (lvmodel.cycle), cycle guide points and volume-curve indices."""

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.autoguide import auto_guide_points, cycle_guide_points
from cmr_atlas.cine.guidepoints import CYCLE_GUIDE_POINTS, GUIDE_POINTS
from cmr_atlas.cine.lvmodel.cycle import fit_cycle
from cmr_atlas.cine.lvmodel.exam import fit_exam
from cmr_atlas.cine.lvmodel.outputs import tables_from_cycles
from cmr_atlas.cine.volume_curves import FUNCTION_INDICES, VOLUME_CURVES, function_indices
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.synth.mesa.cohort import generate_exam, truth_label_map


@pytest.fixture(scope="module")
def exam():
    return generate_exam(41, 1)


@pytest.fixture(scope="module")
def auto_like(exam):
    """Masks rasterised from the true anatomy (with breath-hold shifts) at every frame, and the
    true landmarks as detections: the automated path without the CNNs."""
    ex = exam
    n_s, n_t = ex.images.sax.shape[:2]
    masks = np.stack([np.stack([truth_label_map(ex, "sax", s, t) for t in range(n_t)]) for s in range(n_s)])
    lm = ex.truth["landmarks"]
    lm = lm[lm["observer"] == "truth"]
    # detections only where the CNN runs: LAX on every frame, SAX at ED and ES
    phases = {"ed_frame": ex.acq.ed_frame, "es_frame": ex.acq.es_frame}
    lm = lm[(lm["view"] != "sax") | lm["frame"].isin(list(phases.values()))]
    lm = lm.assign(exam_id=ex.label, present=True, confidence=1.0)
    return masks, phases, lm


def test_cycle_guide_points_every_frame_and_same_ed_es_rows(exam, auto_like):
    masks, phases, lm = auto_like
    cgp = cycle_guide_points(exam.images, masks, phases, lm, n_points=32)
    gp = auto_guide_points(exam.images, masks, phases, lm, n_points=32)
    assert list(cgp.columns) == CYCLE_GUIDE_POINTS.column_names
    sax = cgp[cgp["view"] == "sax"]
    assert sorted(sax["frame"].unique()) == list(range(exam.acq.n_frames))
    assert set(cgp.loc[cgp["frame"] == 3, "phase"].dropna()) == set()  # a frame other than ED/ES
    ed_es = cgp[cgp["phase"].notna()][GUIDE_POINTS.column_names].reset_index(drop=True)
    pd.testing.assert_frame_equal(ed_es, gp.reset_index(drop=True), check_dtype=False)
    times = exam.acq.trigger_times_ms
    assert np.allclose(sax["time_ms"], times[sax["frame"].to_numpy()])
    # a LAX landmark stands for the SAX frame at the same cycle fraction: that frame's time
    assert cgp.loc[cgp["kind"] == "landmark", "time_ms"].notna().all()


def test_cycle_fit_tracks_the_true_volume_curve(exam, auto_like):
    masks, phases, lm = auto_like
    cgp = cycle_guide_points(exam.images, masks, phases, lm, n_points=32).assign(source="auto")
    planes = planes_by_slice(exam.truth["slices"], exam.label)
    ed = fit_exam(cgp[cgp["phase"].notna()].drop(columns="time_ms"), planes, exam.label, "auto",
                  breath_hold=True, shift_reference="sax_mean")
    assert ed.status == "ok", ed.qc_reason
    cyc = fit_cycle(cgp, planes, ed, keep_surfaces=True)
    truth = exam.truth["volumes"].set_index("frame")["volume_ml"].reindex(cyc.frames).to_numpy()
    assert len(cyc.frames) >= exam.acq.n_frames - 2
    model = cyc.volumes["model"]
    # the ED and ES frames are the ED/ES fit itself
    i_ed, i_es = list(cyc.frames).index(phases["ed_frame"]), list(cyc.frames).index(phases["es_frame"])
    assert model[i_ed] == pytest.approx(ed.volumes["model"]["ED_cavity_ml"], rel=1e-9)
    assert model[i_es] == pytest.approx(ed.volumes["model"]["ES_cavity_ml"], rel=1e-9)
    err = model - truth
    assert np.sqrt(np.mean(err**2)) < 4.0, err  # masks on 1.6 mm pixels, 10 mm slice spacing
    assert np.argmin(model) == np.argmin(truth) and np.argmax(model) == np.argmax(truth)
    # fixed topology: every frame sampled on the same grid
    assert {s["endo"].shape for s in cyc.surfaces.values()} == {(841, 3)}
    # the tables: both methods, one row per frame; indices per method
    t = tables_from_cycles([cyc])
    assert list(t["volume_curves"].columns) == VOLUME_CURVES.column_names
    assert set(t["volume_curves"]["method"]) == {"model", "slices"}
    fi = t["function_indices"]
    assert list(fi.columns) == FUNCTION_INDICES.column_names and (fi["status"] == "ok").all()
    assert fi.loc[fi["method"] == "model", "es_frame"].iloc[0] == phases["es_frame"]
    # the phase-normalised trajectory: phase 0 is the ED fit, ES_PHASE the ES fit, 12 phases
    from cmr_atlas.cine.motion import ES_PHASE, N_PHASES, phase_normalised

    traj = phase_normalised(cyc, phases["ed_frame"], phases["es_frame"])
    assert traj.shape == (N_PHASES, 2 * 841, 3)
    assert np.allclose(traj[0, :841], ed.surfaces[("ED", "endo")])
    assert np.allclose(traj[ES_PHASE, 841:], ed.surfaces[("ES", "epi")])
    ms = t["motion_shapes"]
    assert len(ms) == N_PHASES * 2 * 841 and set(ms["phase_index"]) == set(range(N_PHASES))


def test_cycle_without_model_fit_keeps_the_slice_curve(exam, auto_like):
    from cmr_atlas.cine.lvmodel.exam import ExamFit

    masks, phases, lm = auto_like
    cgp = cycle_guide_points(exam.images, masks, phases, lm, n_points=32)
    planes = planes_by_slice(exam.truth["slices"], exam.label)
    cyc = fit_cycle(cgp, planes, ExamFit(exam.label, "auto", "failed", "missing_landmarks: mv"))
    assert cyc.qc_reason == "no_model_fit" and "model" not in cyc.volumes
    assert np.isfinite(cyc.volumes["slices"]).all()


def _analytic(hr=60.0, n=30, ef=0.6, edv=150.0):
    from cmr_atlas.synth.anatomy import activation_curve

    rr = 60.0 / hr
    es = 0.33 / np.sqrt(rr)
    t = np.arange(n) * rr * 0.97 / n
    return t * 1000, edv * (1 - ef * activation_curve(t / rr, es)), rr, es


def test_function_indices_of_a_known_curve():
    t, v, rr, es = _analytic()
    fi = function_indices(t, v)
    assert fi["status"] == "ok" and fi["ed_frame"] == 0
    assert fi["edv_ml"] == pytest.approx(150.0) and fi["esv_ml"] == pytest.approx(60.0, abs=1.0)
    # dense reference from the same curve
    td, vd, _, _ = _analytic(n=3000)
    rate = np.gradient(vd, td / 1000)
    assert fi["per_ml_s"] == pytest.approx(-rate.min(), rel=0.05)
    early = (td / 1000 > es * rr) & (td / 1000 < es * rr + 0.4)
    assert fi["pfr_e_ml_s"] == pytest.approx(rate[early].max(), rel=0.08)
    assert fi["pfr_e_edv_s"] == pytest.approx(fi["pfr_e_ml_s"] / 150.0)
    assert fi["pfr_a_ml_s"] is not None and fi["e_a_ratio"] > 0
    assert 0 < fi["diastasis_ms"] < 600 and 40 < fi["time_to_pfr_ms"] < 200


def test_function_indices_fail_specifically():
    assert function_indices(np.arange(5.0), np.ones(5))["qc_reason"] == "too_few_frames"
    t = np.array([0, 10, 10, 30, 40, 50, 60, 70, 80.0])
    assert function_indices(t, np.arange(9.0))["qc_reason"] == "bad_trigger_times"
    # no separate atrial wave: filling that only slows down has no A peak
    t = np.arange(20) * 40.0
    v = np.r_[np.linspace(150, 60, 8), 60 + 90 * (1 - np.exp(-np.arange(1, 13) / 3.0))]
    fi = function_indices(t, v)
    assert fi["status"] == "ok" and fi["pfr_a_ml_s"] is None and fi["diastasis_ms"] is None


def test_through_plane_shifts_are_estimated_along_the_normal():
    """On the known LV (an ellipsoid: its taper makes a slice's level visible in its contour size),
    3 mm SD through-plane shifts are recovered better than leaving them at zero (with a weak
    prior; the shipped one is stiffer, docs/motion.md), and the in-plane-only fit reports none."""
    import sys
    from pathlib import Path

    from cmr_atlas.cine.lvmodel.fit import FitSettings

    sys.path.insert(0, str(Path(__file__).parent))
    from known_lv import make_fixture

    errs, trues = [], []
    for seed in (3, 4, 5):
        fx = make_fixture(seed, shift_sd_mm=3.0, noise_mm=0.3)
        planes = fx.planes()
        kw = dict(breath_hold=True, shift_reference="sax_mean")
        on = fit_exam(fx.guide_points, planes, "exam0", "truth", settings=FitSettings(through_plane=True, through_plane_ridge=4.0), **kw)
        off = fit_exam(fx.guide_points, planes, "exam0", "truth", **kw)
        assert on.status == "ok" and off.status == "ok"
        assert np.isfinite(on.volumes["model"]["ED_cavity_ml"])
        for v, s, d_off in off.shifts:
            if v == "sax":  # the in-plane-only fit reports no normal component
                assert abs(planes[("sax", s)].normal @ d_off) < 1e-9
        e, t = fx.through_plane_errors(on.shifts)
        errs.append(e - t)
        trues.append(t)
    rms_err = np.sqrt(np.mean(np.concatenate(errs) ** 2))
    rms_true = np.sqrt(np.mean(np.concatenate(trues) ** 2))
    assert rms_err < 0.8 * rms_true, (rms_err, rms_true)


def _curve_from_rates(a_amplitude: float):
    """Volume curve of 30 frames (30 ms apart) from a filling-rate profile: ejection, an early
    wave of 350 ml/s, diastasis at 20 ml/s and a late rise of ``a_amplitude`` ml/s above it."""
    f = np.arange(30)
    rate = np.where(f < 9, -330 * np.sin(np.pi * (f + 0.5) / 9), 0.0)
    rate += (f >= 9) * (20 + 330 * np.exp(-0.5 * ((f - 12) / 1.5) ** 2))
    rate += (f >= 9) * a_amplitude * np.exp(-0.5 * ((f - 27) / 1.5) ** 2)
    t = f * 30.0
    return t, 150 + np.concatenate([[0], np.cumsum((rate[1:] + rate[:-1]) / 2 * 0.03)])


def test_atrial_peak_must_rise_above_diastasis():
    """A late filling rate barely above diastasis (an acquisition that stops before atrial
    contraction) is no atrial wave: A is null; a real wave is found."""
    fi = function_indices(*_curve_from_rates(30.0))
    assert fi["status"] == "ok" and fi["pfr_e_ml_s"] > 300
    assert fi["pfr_a_ml_s"] is None and fi["e_a_ratio"] is None
    fi = function_indices(*_curve_from_rates(200.0))
    assert fi["pfr_a_ml_s"] == pytest.approx(220.0, rel=0.1) and fi["e_a_ratio"] > 1


def test_slice_summation_ignores_rv_contours():
    """Clinical annotations contour the RV too (surface rv_endo): the LV volumes ignore it."""
    from tests.cine.known_lv import make_fixture

    from cmr_atlas.cine.lvmodel.exam import slice_summation

    fx = make_fixture(3, shift_sd_mm=1.0)
    gp = fx.guide_points
    endo = gp[(gp["kind"] == "contour") & (gp["view"] == "sax") & (gp["surface"] == "endo")]
    rv = endo.assign(surface="rv_endo", x_mm=endo["x_mm"] + 40.0)
    planes = fx.planes()
    assert slice_summation(pd.concat([gp, rv], ignore_index=True), planes) == slice_summation(gp, planes)


def test_lax_registration_moves_the_landmarks_by_the_views_shifts(exam, auto_like):
    """The automated layout (SAX contours, landmark-only LAX views): the views registered on the
    images come out near their true breath-hold shifts relative to the SAX stack, the fit lists
    them, and the per-frame fits correct every frame's LAX landmarks by them."""
    from cmr_atlas.cine.lvmodel.lax_shifts import fit_exam_lax_registered, landmark_only_views

    masks, phases, lm = auto_like
    cgp = cycle_guide_points(exam.images, masks, phases, lm, n_points=32).assign(source="auto")
    gp = cgp[cgp["phase"].notna()].drop(columns="time_ms")
    planes = planes_by_slice(exam.truth["slices"], exam.label)
    assert landmark_only_views(gp) == {"lax_2ch", "lax_4ch"}
    plain = fit_exam(gp, planes, exam.label, "auto", breath_hold=True, shift_reference="sax_mean")
    reg = fit_exam_lax_registered(gp, planes, exam.images, exam.label, "auto", breath_hold=True,
                                  shift_reference="sax_mean", first=plain)
    assert reg.status == "ok", reg.qc_reason
    got = {v: d for v, k, d in reg.shifts if v != "sax"}
    assert set(got) == {"lax_2ch", "lax_4ch"} and not any(v != "sax" for v, _, _ in plain.shifts)
    sh = exam.truth["slice_shifts"]
    sax_mean = sh.loc[sh["view"] == "sax", ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(float).mean(axis=0)
    err, true = [], []
    for v, d in got.items():
        n = planes[(v, 0)].normal
        t = sh.loc[sh["view"] == v, ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(float)[0] - sax_mean
        t = t - (t @ n) * n
        err.append(np.linalg.norm(d - t))
        true.append(np.linalg.norm(t))
    assert np.sqrt(np.mean(np.square(err))) < 0.6 * np.sqrt(np.mean(np.square(true))), (err, true)
    # the fixed LAX shifts: with the registration off (no images) the plain fit comes back
    assert fit_exam_lax_registered(gp, planes, None, exam.label, "auto", breath_hold=True,
                                   shift_reference="sax_mean", first=plain) is plain
    cyc = fit_cycle(cgp, planes, reg)
    truth = exam.truth["volumes"].set_index("frame")["volume_ml"].reindex(cyc.frames).to_numpy()
    base = fit_cycle(cgp, planes, plain)
    rms = lambda c: float(np.sqrt(np.mean((c.volumes["model"] - truth) ** 2)))  # noqa: E731
    # this exam's LAX views are displaced by 3-6 mm: unregistered, the base plane follows them
    assert rms(cyc) < 1.2 and rms(cyc) < 0.5 * rms(base), (rms(cyc), rms(base))


def test_fit_stage_registers_only_landmark_only_views(exam, auto_like, tmp_path):
    """run.register_lax_views: the automated source is refitted with its LAX views registered on the
    cached images; a source with LAX contours (manual) and an exam without cached images stay."""
    from cmr_atlas.cine.lvmodel.run import register_lax_views
    from cmr_atlas.core.imagecache import save_exam_images

    masks, phases, lm = auto_like
    auto = auto_guide_points(exam.images, masks, phases, lm, n_points=32)
    c = exam.truth["contours"]
    manual = c[(c["observer"] == "truth") & c["phase"].isin(["ED", "ES"])].assign(
        kind="contour", landmark=None, source="manual", weight=1.0)
    mlm = lm[lm["phase"].isin(["ED", "ES"])].assign(kind="landmark", surface=None, point_index=0, source="manual",
                                                    weight=1.0)
    gp = pd.concat([auto, manual[auto.columns], mlm[auto.columns]], ignore_index=True)
    planes = planes_by_slice(exam.truth["slices"], exam.label)
    fits = [fit_exam(g, planes, exam.label, s, breath_hold=True, shift_reference="sax_mean")
            for s, g in gp.groupby("source")]
    assert [f.source for f in fits] == ["auto", "manual"]
    assert register_lax_views(fits, gp, exam.truth["slices"], tmp_path) == fits  # no cached images
    save_exam_images(exam.images, tmp_path / f"{exam.label}.npz")
    out = register_lax_views(fits, gp, exam.truth["slices"], tmp_path)
    assert out[1] is fits[1]  # LAX contours: the fit's own LAX shifts
    assert out[0] is not fits[0] and {v for v, _, _ in out[0].shifts if v != "sax"} == {"lax_2ch", "lax_4ch"}


def _same_fit(a, b) -> None:
    assert (a.exam_id, a.source, a.status, a.qc_reason, a.rms_residual_mm) == \
        (b.exam_id, b.source, b.status, b.qc_reason, b.rms_residual_mm)
    assert [(v, k) for v, k, _ in a.shifts] == [(v, k) for v, k, _ in b.shifts]
    for (_, _, d), (_, _, e) in zip(a.shifts, b.shifts):
        np.testing.assert_array_equal(d, e)
    assert a.volumes == b.volumes
    assert a.surfaces.keys() == b.surfaces.keys() and a.thickness.keys() == b.thickness.keys()
    for k in a.surfaces:
        np.testing.assert_array_equal(a.surfaces[k], b.surfaces[k])
    for k in a.thickness:
        np.testing.assert_array_equal(a.thickness[k], b.thickness[k])


def test_fit_stage_registration_without_measuring_the_replaced_fit(exam, auto_like, tmp_path):
    """run.fit_exams with the image cache (the fit stage's path: the plain automated fit staged,
    measured only if kept) gives exactly register_lax_views on the finished plain fits."""
    from cmr_atlas.cine.lvmodel.exam import fit_exam_staged
    from cmr_atlas.cine.lvmodel.run import fit_exams, register_lax_views
    from cmr_atlas.core.imagecache import save_exam_images

    masks, phases, lm = auto_like
    gp = auto_guide_points(exam.images, masks, phases, lm, n_points=32).assign(source="auto")
    slices = exam.truth["slices"]
    save_exam_images(exam.images, tmp_path / f"{exam.label}.npz")
    kw = {"breath_hold": True, "shift_reference": "sax_mean", "through_plane": False}
    plain = fit_exams(gp, slices, **kw)
    want = register_lax_views(plain, gp, slices, tmp_path, True, "sax_mean")
    got = fit_exams(gp, slices, **kw, lax_cache_dir=tmp_path)
    assert want[0] is not plain[0] and any(v != "sax" for v, _, _ in got[0].shifts)  # registered
    _same_fit(got[0], want[0])
    # staged: the breath-hold stage only (the shifts), then finished: the plain fit itself
    planes = planes_by_slice(slices, exam.label)
    staged = fit_exam_staged(gp, planes, exam.label, "auto", breath_hold=True, shift_reference="sax_mean")
    assert staged.fit.shifts and staged.fit.result is None and not staged.fit.surfaces
    assert [(v, k) for v, k, _ in staged.fit.shifts] == [(v, k) for v, k, _ in plain[0].shifts]
    assert staged.finish() is staged.finish()
    _same_fit(staged.fit, plain[0])


def test_fit_stage_falls_back_on_the_plain_fit_when_the_refit_fails(exam, auto_like, tmp_path, monkeypatch):
    """A registered refit that fails leaves the plain fit, then completed and measured (its own
    verdict); a plain fit that fails on its measures stays failed with its reason."""
    from cmr_atlas.cine.lvmodel import lax_shifts, measures
    from cmr_atlas.cine.lvmodel.exam import ExamFit
    from cmr_atlas.cine.lvmodel.run import fit_exams
    from cmr_atlas.core.imagecache import save_exam_images

    masks, phases, lm = auto_like
    gp = auto_guide_points(exam.images, masks, phases, lm, n_points=32).assign(source="auto")
    save_exam_images(exam.images, tmp_path / f"{exam.label}.npz")
    kw = {"breath_hold": True, "shift_reference": "sax_mean", "through_plane": False}
    refits = []
    monkeypatch.setattr(lax_shifts, "fit_exam", lambda gp, planes, e, s, **k: refits.append(k)
                        or ExamFit(e, s, "failed", "fit_error: LinAlgError"))
    got, = fit_exams(gp, exam.truth["slices"], **kw, lax_cache_dir=tmp_path)
    plain, = fit_exams(gp, exam.truth["slices"], **kw)
    assert refits and got.status == plain.status != "failed"
    _same_fit(got, plain)
    assert not any(v != "sax" for v, _, _ in got.shifts)  # the plain fit's shifts: not registered
    monkeypatch.setattr(measures, "enclosed_volume_ml", lambda *a: -1.0)
    got, = fit_exams(gp, exam.truth["slices"], **kw, lax_cache_dir=tmp_path)
    assert got.status == "failed" and got.qc_reason == "implausible_fit: non-positive volume"


def test_cycle_tables_by_chunk_equal_the_shard_at_once(exam, auto_like):
    """The fit job's per-frame tables made a few exams at a time (bounded memory) are those of the
    whole shard at once, rows in the same order."""
    from cmr_atlas.cine.lvmodel.run import cycle_fits, cycle_tables_by_chunk

    masks, phases, lm = auto_like
    one = cycle_guide_points(exam.images, masks, phases, lm, n_points=24).assign(source="auto")
    labels = ["E1", "E2", "E3"]
    cgp = pd.concat([one.assign(exam_id=e) for e in labels], ignore_index=True)
    slices = pd.concat([exam.truth["slices"].assign(exam_id=e) for e in labels], ignore_index=True)
    planes = planes_by_slice(slices, "E1")
    ed_es = one[one["phase"].notna()].drop(columns="time_ms")
    fits = [fit_exam(ed_es.assign(exam_id=e), planes, e, "auto", breath_hold=True, shift_reference="sax_mean")
            for e in labels]

    class Cycle:  # CycleInputs' guide points, from the table above
        asked: list[list[str]] = []

        def guide_points(self, exam_ids):
            self.asked.append(list(exam_ids))
            return cgp[cgp["exam_id"].isin(exam_ids)]

    source = Cycle()
    got = cycle_tables_by_chunk(fits, source, slices, chunk=2)
    want = tables_from_cycles(cycle_fits(fits, cgp, slices))
    assert source.asked == [["E1", "E2"], ["E3"]]
    for name, table in want.items():
        assert len(table) > 0
        pd.testing.assert_frame_equal(got[name], table, check_exact=True)
