"""Synthetic cohort: geometry round trip, truth consistency, volumes, determinism, calibration."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from matplotlib.path import Path as MplPath

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import calibration as cal
from cmr_atlas.synth.mesa.cohort import exam_label, generate_exam, truth_label_map, write_synthetic_exam
from cmr_atlas.synth.subjects import sample_subjects
from cmr_atlas.synth.truth import TRUTH_TABLES
from cmr_atlas.core.tables import read_table
from tests.shared import shared_object


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    return shared_object(tmp_path_factory, "legacy_exam_11_3", lambda: generate_exam(11, 3, observers=2))


@pytest.fixture(scope="module")
def cohort(legacy_synth_cohort):
    return legacy_synth_cohort


def _rasterise(rc: np.ndarray, shape) -> np.ndarray:
    rr, cc = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return MplPath(rc).contains_points(np.c_[rr.ravel(), cc.ravel()]).reshape(shape)


def test_truth_tables_match_schemas(cohort):
    for schema in TRUTH_TABLES:
        df = read_table(cohort / "truth" / f"{schema.name}.parquet", schema)
        assert len(df) > 0, schema.name


def test_annotation_tables_are_laid_out_for_one_observer_readers(cohort, monkeypatch, tmp_path):
    import pyarrow.parquet as pq

    from cmr_atlas.synth import truth as T

    contours = pd.read_parquet(cohort / "truth" / "contours.parquet")
    order = contours["observer"] + "/" + contours["exam_id"]
    assert order.is_monotonic_increasing  # sorted by observer, then exam
    # row groups small enough that the statistics of a filtered read skip the other observers'
    monkeypatch.setattr(T, "ANNOTATION_ROW_GROUP_ROWS", 500)
    path = T.write_truth_table(contours, tmp_path / "relaid.parquet", T.CONTOURS)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups > 3
    observer_col = meta.schema.to_arrow_schema().get_field_index("observer")
    groups = [meta.row_group(i).column(observer_col).statistics for i in range(meta.num_row_groups)]
    obs1 = [g for g in groups if g.min <= "obs1" <= g.max]
    assert 0 < len(obs1) < len(groups) / 2
    back = pd.read_parquet(path, filters=[("observer", "==", "obs1")])
    pd.testing.assert_frame_equal(back.reset_index(drop=True),
                                  contours[contours["observer"] == "obs1"].reset_index(drop=True))


def test_dicom_geometry_round_trip(cohort):
    """Truth points mapped through the DICOM header land where the generator drew them."""
    contours = pd.read_parquet(cohort / "truth" / "contours.parquet")
    slices = pd.read_parquet(cohort / "truth" / "slices.parquet")
    label = exam_label(4, 0)
    files = [p for p in (cohort / "dicom" / label).rglob("*") if p.is_file()]
    checked = 0
    times = _trigger_times(cohort, label)
    for f in files:
        ds = pydicom.dcmread(f)
        if "TriggerTime" not in ds:
            continue  # localizer
        plane = SlicePlane.from_dicom(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, (ds.Rows, ds.Columns))
        # which truth plane is this? the one with the same position
        d = np.linalg.norm(slices[["ipp_x", "ipp_y", "ipp_z"]].to_numpy() - plane.position_mm, axis=1)
        row = slices.iloc[int(np.argmin(d))]
        assert d.min() < 1e-3
        frame = int(np.argmin(np.abs(times - float(ds.TriggerTime))))
        c = contours[(contours.exam_id == label) & (contours.observer == "truth") & (contours.view == row.view)
                     & (contours.slice_index == row.slice_index) & (contours.frame == frame) & (contours.surface == "endo")]
        if row.view != "sax" or len(c) < 10:
            continue
        e = contours[(contours.exam_id == label) & (contours.observer == "truth") & (contours.view == "sax")
                     & (contours.slice_index == row.slice_index) & (contours.frame == frame) & (contours.surface == "epi")]
        rc, dist = plane.patient_to_pixel(c[["x_mm", "y_mm", "z_mm"]].to_numpy())
        np.testing.assert_allclose(rc, c[["row_px", "col_px"]].to_numpy(), atol=1e-3)
        assert np.abs(dist).max() < 1e-3  # contours lie in the image plane (header rounding: 1e-5 mm)
        # blood inside the traced cavity is much brighter than the ring just outside it
        img = ds.pixel_array.astype(float)
        centre = rc.mean(axis=0)
        # myocardium: inside the epicardium, away from the endocardial edge (partial volume)
        myo = _rasterise(e[["row_px", "col_px"]].to_numpy(), img.shape) & ~_rasterise(centre + 1.2 * (rc - centre), img.shape)
        core = _rasterise(centre + 0.7 * (rc - centre), img.shape)
        if core.sum() > 30 and myo.sum() > 30:
            assert img[core].mean() > 1.5 * img[myo].mean()
            checked += 1
    assert checked >= 10


def _trigger_times(cohort: Path, label: str) -> np.ndarray:
    times = set()
    for f in (cohort / "dicom" / label).rglob("*"):
        if f.is_file():
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            if "TriggerTime" in ds:
                times.add(float(ds.TriggerTime))
    return np.array(sorted(times))


def test_contours_consistent_with_label_masks(exam):
    ed = exam.acq.ed_frame
    c = exam.truth["contours"]
    dices = []
    for sl in range(2, exam.images.n_slices - 3):
        labels = truth_label_map(exam, "sax", sl, ed)
        for surface, lab in (("endo", labels == 2), ("epi", labels >= 1) ):
            if surface == "epi":
                lab = (labels == 1) | (labels == 2)
            pts = c[(c.observer == "truth") & (c.view == "sax") & (c.slice_index == sl) & (c.frame == ed) & (c.surface == surface)]
            if len(pts) < 10:
                continue
            mask = _rasterise(pts[["row_px", "col_px"]].to_numpy(), lab.shape)
            dices.append(2 * (mask & lab).sum() / (mask.sum() + lab.sum()))
    assert len(dices) >= 6
    assert min(dices) > 0.93, dices


def test_rv_insertions_do_not_depend_on_how_finely_the_epicardium_is_traced(exam, monkeypatch):
    from cmr_atlas.synth import truthgeom as tg

    heart, acq, planes = exam.heart, exam.acq, exam.images.sax_planes
    found = 0
    for sl in range(len(planes)):
        shift, w = acq.shifts_mm[("sax", sl)], float(acq.activation[acq.ed_frame])
        centre = tg.axis_point_in_plane(heart, planes[sl], shift, w)
        pts = {}
        for n in (64, 97, 512):
            monkeypatch.setattr(tg, "N_RAYS", n)
            epi = tg.plane_contour(heart, w, planes[sl], shift, "epi", centre)
            pts[n] = np.array(tg.rv_insertions(heart, w, epi, shift)) if epi is not None else np.zeros((0, 3))
        if len(pts[512]) != 2 or len(pts[64]) != 2 or len(pts[97]) != 2:
            continue
        found += 1
        for n in (64, 97):  # the same two points, in either order, to a tenth of a millimetre
            d = np.linalg.norm(pts[n][:, None] - pts[512][None], axis=-1)
            assert min(d[0, 0] + d[1, 1], d[0, 1] + d[1, 0]) < 0.2, (sl, n, d)
    assert found >= 4


def test_landmarks_lie_on_surfaces(exam):
    heart, acq = exam.heart, exam.acq
    lm = exam.truth["landmarks"]
    lm = lm[lm.observer == "truth"]
    for _, r in lm.iterrows():
        w = float(acq.activation[r.frame])
        ph = heart.phase(w)
        shift = acq.shifts_mm[(r.view, r.slice_index)]
        loc = heart.to_local(np.array([r.x_mm, r.y_mm, r.z_mm]) - shift)
        if r.landmark.startswith("mv_"):
            assert abs(loc[2] - ph.length_mm) < 0.2  # on the mitral plane
            rho, phi = np.hypot(loc[0], loc[1]), np.arctan2(loc[1], loc[0])
            assert abs(rho - ph.r_endo(ph.length_mm, phi)) < 0.5  # on the endocardial ring
        elif r.landmark.startswith("rv_insert"):
            assert abs(ph.implicit(loc[None], "epi")[0]) < 0.6  # on the epicardium
            # where the RV wall starts, 1 mm outside the epicardium: it is there on one side of the
            # point along the epicardium (in the image plane) and not on the other
            plane = exam.images.sax_planes[r.slice_index]
            p = np.array([r.x_mm, r.y_mm, r.z_mm])
            radial = heart.to_patient(np.array([loc[0], loc[1], 0.0])) - heart.to_patient(np.zeros(3))
            tangent = np.cross(plane.normal, radial)
            tangent /= np.linalg.norm(tangent)
            sides = []
            for d in (-0.3, 0.3):
                q = heart.to_local(p + d * tangent - shift)
                rho = np.hypot(q[0], q[1])
                q[:2] *= (rho + 1.0) / rho
                sides.append(heart.rv_inside(q[None], w, ph, inner=False)[0])
            assert sides[0] != sides[1], (r.landmark, r.slice_index, r.frame)
    names = set(lm.landmark)
    assert {"mv_anterior", "mv_inferior", "mv_septal", "mv_lateral", "apex", "rv_insert_anterior",
            "rv_insert_posterior", "lv_centre"} <= names
    # septal hinge is on the septal (e1) side, the anterior RV insertion on the anterior (+e2) side
    ed = lm[lm.frame == acq.ed_frame]
    s = ed[ed.landmark == "mv_septal"].iloc[0]
    l = ed[ed.landmark == "mv_lateral"].iloc[0]
    sh = acq.shifts_mm[("lax_4ch", 0)]
    assert heart.to_local(s[["x_mm", "y_mm", "z_mm"]].to_numpy(float) - sh)[0] > heart.to_local(l[["x_mm", "y_mm", "z_mm"]].to_numpy(float) - sh)[0]
    for sl, g in ed[ed.landmark.str.startswith("rv_insert")].groupby("slice_index"):
        e2 = {r.landmark: heart.to_local(np.array([r.x_mm, r.y_mm, r.z_mm]) - acq.shifts_mm[("sax", sl)])[1]
              for r in g.itertuples()}
        assert e2["rv_insert_anterior"] > e2["rv_insert_posterior"]


@pytest.mark.parametrize("view, names", [("sax", ("rv_insert_anterior", "rv_insert_posterior")),
                                         ("lax_2ch", ("mv_anterior", "mv_inferior"))])
def test_anterior_and_inferior_are_named_by_the_hearts_handedness_not_the_patients_front(exam, view, names):
    """A heart posed with e2 turned slightly posterior keeps its anatomy: the +e2 point is anterior,
    although the patient's anterior direction (DICOM -y) would name the other one."""
    from dataclasses import replace

    from scipy.spatial.transform import Rotation

    from cmr_atlas.synth.truth_rows import name_pair

    heart = exam.heart
    # a turn about e1 that points e2 slightly posterior (patient +y)
    turns = np.radians(np.concatenate([np.arange(0, 90), -np.arange(0, 90)]))
    frames = [Rotation.from_rotvec(heart.frame[:, 0] * t).as_matrix() @ heart.frame for t in turns]
    posed = replace(heart, frame=min((f for f in frames if f[1, 1] > 0.05), key=lambda f: f[1, 1]))
    local = [np.array([30 * np.cos(a), 30 * np.sin(a), 40.0]) for a in np.radians([60.0, -60.0])]
    pts = [posed.origin_mm + posed.frame @ v for v in local]
    named = name_pair(posed, view, pts[::-1], np.zeros(3))
    assert np.allclose(named[names[0]], pts[0]) and np.allclose(named[names[1]], pts[1])
    assert pts[0][1] > pts[1][1]  # the anterior one is the more posterior in the patient


def _mesh_volume_ml(grid: np.ndarray, n_long: int = 29, n_circ: int = 29) -> float:
    """Volume enclosed by a surface grid closed with a fan over the base ring (divergence theorem)."""
    g = grid.reshape(n_long, n_circ, 3)
    tris = []
    for i in range(n_long - 1):
        for j in range(n_circ):
            a, b = g[i, j], g[i, (j + 1) % n_circ]
            c, d = g[i + 1, j], g[i + 1, (j + 1) % n_circ]
            tris += [(a, c, b), (b, c, d)]
    centre = g[-1].mean(axis=0)
    for j in range(n_circ):
        tris.append((g[-1, j], centre, g[-1, (j + 1) % n_circ]))
    t = np.array(tris)
    return abs(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0) / 1000.0


def test_true_volumes_agree_with_mesh_volume(exam):
    heart, acq = exam.heart, exam.acq
    fine = heart.surface_grid(float(acq.activation[acq.ed_frame]), "endo", 121, 181)
    vol = _mesh_volume_ml(fine, 121, 181)
    truth = exam.truth["exams"].iloc[0]
    assert vol == pytest.approx(truth.edv_ml, rel=0.01)
    epi = _mesh_volume_ml(heart.surface_grid(float(acq.activation[acq.ed_frame]), "epi", 121, 181), 121, 181)
    assert (epi - vol) * 1.05 == pytest.approx(truth.lv_mass_g, rel=0.015)
    # and the stored 29x29 truth grid is close too (coarse polygon: slightly smaller)
    s = exam.truth["shapes"]
    grid = s[(s.phase == "ED") & (s.surface == "endo")].sort_values("point_index")[["x_mm", "y_mm", "z_mm"]].to_numpy()
    assert _mesh_volume_ml(grid) == pytest.approx(truth.edv_ml, rel=0.04)


def test_same_seed_same_bytes(exam, tmp_path):
    def digest(folder):
        h = hashlib.sha256()
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(folder).as_posix().encode())
                h.update(p.read_bytes())
        return h.hexdigest()

    exams = [exam, generate_exam(11, 3, observers=2)]  # the module's exam, and the same drawn again
    for out, ex in zip(("a", "b"), exams):
        write_synthetic_exam(ex, tmp_path / out, 11, 3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    # an exam depends on (seed, index) only, not on the cohort it is generated in
    assert exams[0].label == exam_label(11, 3) and exams[0].subject == exams[1].subject


def test_different_index_different_exam(cohort):
    subjects = pd.read_parquet(cohort / "truth" / "subjects.parquet")
    assert subjects.study_instance_uid.nunique() == len(subjects) == 2
    assert subjects.iloc[0].age != subjects.iloc[1].age


def test_acquisition_follows_protocol(exam):
    acq = exam.acq
    assert 10 <= len(acq.sax_planes) <= 12 and 20 <= acq.n_frames <= 30
    steps = [np.linalg.norm(a.position_mm - b.position_mm) for a, b in zip(acq.sax_planes, acq.sax_planes[1:])]
    np.testing.assert_allclose(steps, 10.0, atol=1e-6)  # 6 mm slices + 4 mm gap
    assert 1.4 <= acq.sax_planes[0].pixel_spacing_mm[0] <= 2.5
    # LAX planes are close to perpendicular to the SAX stack
    for p in acq.lax_planes.values():
        assert abs(p.normal @ acq.sax_planes[0].normal) < 0.2
    assert acq.activation[acq.es_frame] > 0.9 and acq.activation[acq.ed_frame] < 0.05


@pytest.mark.slow
def test_calibration_against_mesa_reference():
    """Clinical indices and covariates of a few hundred subjects match the MESA/CAP figures."""
    rng = np.random.default_rng(2024)
    subj = sample_subjects(rng, 400)
    measured = []
    for _, s in subj.iterrows():
        idx = {k[7:]: v for k, v in s.items() if str(k).startswith("target_")}
        heart = an.make_heart(rng, idx, s.bsa_m2, s.height_cm, s.weight_kg, s.heart_rate)
        measured.append(an.measured_indices(heart, s.bsa_m2))
    m = pd.DataFrame(measured)
    mean, sd = cal.CAP_INDEX_MEAN["ASYMP"], cal.CAP_INDEX_SD["ASYMP"]
    for i, name in enumerate(cal.INDEX_NAMES):
        assert abs(m[name].mean() - mean[i]) < 0.2 * sd[i], name  # mean within 0.2 SD (n=400: SE 0.05 SD)
        assert 0.8 < m[name].std() / sd[i] < 1.2, name
    corr = np.corrcoef(m[list(cal.INDEX_NAMES)].to_numpy().T)
    assert np.abs(corr - cal.CAP_INDEX_CORR["ASYMP"]).max() < 0.2
    assert abs(subj.age.mean() - cal.MESA["age_mean"]) < 1.5
    assert abs((subj.sex == "F").mean() - cal.MESA["female"]) < 0.07
    assert abs(subj.hypertension.mean() - cal.MESA["hypertension"]) < 0.07
    assert abs(subj.diabetes.mean() - cal.MESA["diabetes"]) < 0.045
    assert abs(subj.sbp.mean() - cal.MESA["sbp_mean"]) < 3.0
    # LV mass index in the MESA range (Bluemke 2008: about 60-90 g/m2)
    assert 55 < (m.lv_mass_g / subj.bsa_m2.to_numpy()).mean() < 95


def test_mean_shape_resembles_cap_atlas():
    """Mean ED endocardium has the CAP mean shape's dimensions (cap_mean_shape_ED_ES.csv)."""
    # CAP mean ED endocardium: extent along the long axis 89.6 mm (incl. the basal ring tilt),
    # cross-section extents 52.2 and 54.4 mm.
    rng = np.random.default_rng(5)
    subj = sample_subjects(rng, 60)
    dims = []
    for _, s in subj.iterrows():
        idx = {k[7:]: v for k, v in s.items() if str(k).startswith("target_")}
        heart = an.make_heart(rng, idx, s.bsa_m2, s.height_cm, s.weight_kg, s.heart_rate)
        loc = heart.to_local(heart.surface_grid(0.0, "endo"))
        dims.append([np.ptp(loc[:, 2]), np.ptp(loc[:, 0]), np.ptp(loc[:, 1])])
    length, d1, d2 = np.mean(dims, axis=0)
    assert length == pytest.approx(89.6, rel=0.15)
    assert (d1 + d2) / 2 == pytest.approx(53.3, rel=0.15)


def test_uids_unique(cohort):
    sops, series = [], set()
    for f in (cohort / "dicom").rglob("*"):
        if f.is_file():
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            sops.append(ds.SOPInstanceUID)
            series.add((ds.StudyInstanceUID, ds.SeriesNumber, ds.SeriesInstanceUID))
    assert len(sops) == len(set(sops))
    assert len({s[2] for s in series}) == len(series)


def test_cohort_progress_is_logged_as_exams_finish(tmp_path, monkeypatch, caplog):
    from cmr_atlas.synth import parallel
    from cmr_atlas.synth import truth as T
    from cmr_atlas.synth.mesa import cohort as mesa_cohort

    done = []

    def fake(task):  # stands in for generating and writing one exam
        done.append(task[1])
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("synth:")]
        assert len(lines) == len(done) - 1  # the previous exam was reported before this one started
        return {s.name: s.empty() for s in T.TRUTH_TABLES}

    monkeypatch.setattr(mesa_cohort, "_generate_and_write", fake)
    monkeypatch.setattr(parallel, "PROGRESS_INTERVAL_S", 0.0)
    with caplog.at_level("INFO", logger=mesa_cohort.log.name):
        mesa_cohort.generate_cohort(tmp_path, 3, seed=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("synth:")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]


def test_slab_depths_re_derive_the_legacy_truth(exam):
    """:mod:`cmr_atlas.synth.slab` on the legacy generator: its centre depth is this exam's truth
    (checked inside), and the +-2 mm depths differ from it only on some slices."""
    from cmr_atlas.synth.slab import sax_presence_by_depth

    d = sax_presence_by_depth("cine_gre", 11, 3, 0.0, exam.truth["landmarks"])
    assert set(d["frame"]) == {exam.acq.ed_frame, exam.acq.es_frame} and (d["n_depths"] == 3).all()
    assert d["present_centre"].any() and (d.loc[d["present_centre"], "depths_present"] >= 1).all()
    with pytest.raises(ValueError, match="differ from the truth rows"):
        sax_presence_by_depth("cine_gre", 11, 4, 0.0, exam.truth["landmarks"])
