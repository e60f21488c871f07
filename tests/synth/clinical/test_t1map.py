"""T1 maps: headers and units, values in the published ranges, ECV from the maps against the truth."""

import numpy as np
import pytest

from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.clinical import t1map
from cmr_atlas.synth.clinical.physiology import ecv_from_t1
from cmr_atlas.synth.clinical.render import DIASTASIS_FRAC, PlaneSampler, mostly, remote_ecv
from cmr_atlas.synth.clinical.truth import TISSUE_PIXELS


@pytest.fixture(scope="module")
def maps(small_ctx):
    out = []
    for index in range(4):
        ctx = small_ctx(23, index)
        out.append((ctx, t1map.render(ctx, np.random.default_rng(index))))
    return out


def test_headers_units_and_contrast_agent(maps):
    for ctx, res in maps:
        native, post = res.series
        assert (native.kind, post.kind) == ("t1map_native", "t1map_post")
        assert native.start_min < 0 < post.start_min == ctx.timeline.t1_post_min
        assert 1 <= len(native.planes) <= 3 and native.slice_indices == post.slice_indices
        for s in (native, post):
            h = s.series_headers
            assert h["ImageType"] == ["DERIVED", "PRIMARY", "T1 MAP", "MOCO"] and s.sequence == "t1map"
            item = h["RealWorldValueMappingSequence"][0]
            unit = item.MeasurementUnitsCodeSequence[0]
            assert (item.LUTLabel, unit.CodeValue, unit.CodingSchemeDesignator) == ("T1", "ms", "UCUM")
            assert item.RealWorldValueSlope == 1.0 and item.RealWorldValueIntercept == 0.0
            assert all(img.dtype == np.uint16 and img.shape[0] == 1 for img in s.images)
        assert "ContrastBolusAgent" in post.series_headers and "ContrastBolusAgent" not in native.series_headers
        c = res.truth["contours"]
        assert set(c.sequence) == {"t1map"} and set(c.view) == {"sax"}
        assert set(res.truth["landmarks"].landmark) <= {"rv_insert_anterior", "rv_insert_posterior", "lv_centre"}


def _rois(ctx, k):
    """Per-pixel AHA segment of myocardium wholly inside the wall and the blood-pool core of SAX
    slice ``k`` (no breath-hold displacement)."""
    plane = ctx.geometry.sax_planes[k]
    sampler = PlaneSampler(ctx.heart, plane, np.zeros(3))
    w = float(an.activation_curve(np.array([DIASTASIS_FRAC]), ctx.heart.es_frac)[0])
    lab = sampler.labels(w)
    depth = sampler.wall_depth(w)
    myo = (lab == an.LV_MYO).all(-1) & (np.nan_to_num(depth, nan=0.0) > 0.2).all(-1) & (depth < 0.8).all(-1)
    seg = sampler.myocardial_regions(w)[..., 1]
    blood = ndi_erode((lab == an.LV_BLOOD).all(-1), 5)
    return sampler, w, np.where(myo, seg, 0), blood


def ndi_erode(mask, n):
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=n)


def test_values_in_published_ranges_and_blood_above_myocardium(small_ctx):
    for field_t, (lo, hi) in ((1.5, (930.0, 1070.0)), (3.0, (1120.0, 1290.0))):
        ctx = next(c for c in (small_ctx(23, i) for i in range(12)) if c.field_t == field_t)
        k = ctx.geometry.sax_level("mid")
        sampler, w, seg, blood = _rois(ctx, k)
        img, _ = t1map.t1_map(ctx, sampler, w, None, 0.04, 0.8, np.random.default_rng(0))
        myo = img[seg > 0].astype(float)
        assert lo < myo.mean() < hi and 25.0 < myo.std() < 90.0
        assert img[blood].mean() > myo.mean() + 300.0
        c = float(ctx.blood_gd_mmol_l(ctx.timeline.t1_post_min))
        post, _ = t1map.t1_map(ctx, sampler, w, c, 0.04, 0.8, np.random.default_rng(1))
        assert post[blood].mean() < post[seg > 0].mean() < 0.8 * myo.mean()


def test_ecv_from_the_maps_matches_the_true_ecv_per_segment(small_ctx):
    """ROI means of native and post maps with the true hematocrit give each segment's ECV within the
    map noise (a segment ROI of ~50-150 pixels with a 40-50 ms pixel SD: ECV SD about 0.005-0.01)."""
    errors, checked = [], 0
    for index in range(6):
        ctx = small_ctx(29, index, mi_fraction=0.5)
        ph = ctx.physiology
        c = float(ctx.blood_gd_mmol_l(ctx.timeline.t1_post_min))
        rng = np.random.default_rng(index)
        for k in range(len(ctx.geometry.sax_planes)):
            sampler, w, seg, blood = _rois(ctx, k)
            native, _ = t1map.t1_map(ctx, sampler, w, None, 0.04, 0.8, rng)
            post, tissue = t1map.t1_map(ctx, sampler, w, c, 0.04, 0.8, rng)
            if blood.sum() < 20:
                continue
            lesion = mostly(tissue, 1) | mostly(tissue, 2)
            for s in np.unique(seg[seg > 0]):
                roi = (seg == s) & ~lesion
                if s > 16 or roi.sum() < 20 or s in ph.scar_segments or s in ph.fibrosis_segments:
                    continue
                e = ecv_from_t1(native[roi].mean(), post[roi].mean(), native[blood].mean(), post[blood].mean(),
                                ph.hematocrit)
                errors.append(e - ph.ecv[s - 1])
                checked += 1
            if ph.scar_segments:  # and scar raises the ECV the maps give
                scar = mostly(tissue, 1) & (seg > 0)
                if scar.sum() >= 20:
                    e = ecv_from_t1(native[scar].mean(), post[scar].mean(), native[blood].mean(),
                                    post[blood].mean(), ph.hematocrit)
                    assert e > remote_ecv(ph) + 0.15
    errors = np.array(errors)
    assert checked >= 30
    assert abs(errors.mean()) < 0.01 and np.abs(errors).max() < 0.03, errors


def test_tissue_pixels_for_scar_on_t1_maps(mi_ctx):
    res = t1map.render(mi_ctx, np.random.default_rng(0))
    tp = res.truth[TISSUE_PIXELS.name]
    assert set(tp.sequence) <= {"t1map"}
    assert set(tp.slice_index) <= set(res.series[0].slice_indices)


def test_same_seed_same_maps(small_ctx):
    ctx = small_ctx(23, 0)
    a, b = (t1map.render(ctx, np.random.default_rng(4)) for _ in range(2))
    for sa, sb in zip(a.series, b.series):
        for ia, ib in zip(sa.images, sb.images):
            np.testing.assert_array_equal(ia, ib)
