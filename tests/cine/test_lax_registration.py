"""LAX-to-SAX registration on the intersection lines (cmr_atlas.cine.lax_registration) and its use in
the ED/ES fit (cmr_atlas.cine.lvmodel.lax_shifts)."""

from dataclasses import replace

import numpy as np
import pytest

from cmr_atlas.cine.lax_registration import lax_view_shifts
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import ExamImages

SPACING = 1.0
SHAPE = (120, 120)


def _heart(p: np.ndarray, scale: float) -> np.ndarray:
    """Intensity of a toy heart at points (..., 3), smooth in 3D (edges 1.5 mm wide): bright LV
    cavity tapering to the apex (-z), dark myocardium around it, a bright off-centre RV, grey
    background; ``scale`` shrinks the cavity (a cardiac phase).  Long axis along z, base at z = +40."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]

    def inside(signed_mm):  # 1 inside, 0 outside, smooth
        return 0.5 * (1 + np.tanh(signed_mm / 1.5))

    below = inside(40 - z)
    r = np.hypot(x, y)
    r_endo = scale * 24 * np.sqrt(np.clip(1 - ((z - 40) / 95) ** 2, 0, None))
    r_epi = 33 * np.sqrt(np.clip(1 - ((z - 40) / 105) ** 2, 0, None))
    lv_wall, cavity = below * inside(r_epi - r), below * inside(r_endo - r)
    rv = inside(14 * np.clip((z + 30) / 60, 0, 1) - np.hypot(x - 38, y + 10)) * (1 - lv_wall)
    out = 0.45 + (0.15 - 0.45) * lv_wall + (1.0 - 0.15) * cavity
    return out + (0.85 - 0.45) * rv


def _images(sax_shifts: dict[int, np.ndarray], lax_shift: dict[str, np.ndarray]) -> ExamImages:
    scales = (1.0, 0.8, 0.65)
    ez, ex, ey = np.eye(3)[2], np.eye(3)[0], np.eye(3)[1]
    sax_planes = [SlicePlane.centred(np.array([0.0, 0.0, z]), ex, ey, (SPACING, SPACING), SHAPE) for z in
                  range(35, -46, -10)]
    lax_planes = {"lax_4ch": SlicePlane.centred(np.zeros(3), ex, -ez, (SPACING, SPACING), SHAPE),
                  "lax_2ch": SlicePlane.centred(np.zeros(3), ey, -ez, (SPACING, SPACING), SHAPE)}

    def render(plane: SlicePlane, d: np.ndarray) -> np.ndarray:
        grid = plane.pixel_grid_mm()
        return np.stack([_heart(grid - d, s) for s in scales])

    sax = np.stack([render(pl, sax_shifts[k]) for k, pl in enumerate(sax_planes)])
    lax = {v: render(pl, lax_shift[v]) for v, pl in lax_planes.items()}
    return ExamImages("E1", sax, sax_planes, np.array([0.0, 300.0, 600.0]), lax, lax_planes)


def _in_plane(d: np.ndarray, plane: SlicePlane) -> np.ndarray:
    return d - (d @ plane.normal) * plane.normal


@pytest.mark.parametrize("seed", [0, 1])
def test_lax_view_shifts_recovers_known_shifts(seed):
    rng = np.random.default_rng(seed)
    sax_shifts = {k: np.r_[rng.normal(0, 2.0, 2), 0.0] for k in range(9)}
    lax_true = {v: rng.normal(0, 2.5, 3) for v in ("lax_4ch", "lax_2ch")}
    images = _images(sax_shifts, lax_true)
    centres = {k: np.array([0, 0, pl.centre_mm[2]]) for k, pl in enumerate(images.sax_planes)
               if pl.centre_mm[2] > -40}
    got = lax_view_shifts(images, centres, sax_shifts)
    assert set(got) == {"lax_4ch", "lax_2ch"}
    for v, d in lax_true.items():
        plane = images.lax_planes[v]
        assert abs(got[v] @ plane.normal) < 1e-9  # in-plane only
        true = _in_plane(d, plane)
        err = np.linalg.norm(got[v] - true)
        # along the wall lines the match is sharp; along the long axis it rests on the taper
        assert err < 0.8 and err < 0.4 * np.linalg.norm(true), (v, got[v], true)
    # the images as the cache stores them (uint16, the fit reads them so): the same shifts
    scale = 1000.0 / max(float(images.sax.max()), float(max(v.max() for v in images.lax.values())))
    as_float = replace(images, sax=np.round(images.sax * scale).astype(np.float32),
                       lax={v: np.round(a * scale).astype(np.float32) for v, a in images.lax.items()})
    as_stored = replace(as_float, sax=as_float.sax.astype(np.uint16),
                        lax={v: a.astype(np.uint16) for v, a in as_float.lax.items()})
    want = lax_view_shifts(as_float, centres, sax_shifts)
    got = lax_view_shifts(as_stored, centres, sax_shifts)
    assert set(got) == set(want)
    for v, d in got.items():
        np.testing.assert_array_equal(d, want[v])
    # ``views`` restricts the registration
    zero = lax_view_shifts(images, centres, {k: np.zeros(3) for k in sax_shifts}, views={"lax_4ch"})
    assert set(zero) == {"lax_4ch"}


def test_unshifted_views_stay_put():
    sax_shifts = {k: np.zeros(3) for k in range(9)}
    images = _images(sax_shifts, {"lax_4ch": np.zeros(3), "lax_2ch": np.zeros(3)})
    centres = {k: np.array([0, 0, pl.centre_mm[2]]) for k, pl in enumerate(images.sax_planes)}
    got = lax_view_shifts(images, centres, sax_shifts)
    for d in got.values():
        assert np.linalg.norm(d) <= 0.26


def test_bilinear_samples_are_map_coordinates_per_frame():
    # the registration samples every frame in one pass: the values (and the NaN outside the image,
    # edges included) must be ndimage.map_coordinates' order-1 constant-NaN ones, frame by frame
    from scipy import ndimage

    from cmr_atlas.cine.lax_registration import _bilinear

    rng = np.random.default_rng(3)
    stack = rng.random((5, 17, 23)) * 200
    n = 4000
    frame = rng.integers(0, 5, n)
    r, c = rng.uniform(-2, 18, n), rng.uniform(-2, 24, n)
    r[:40], c[40:80], r[80:120], c[120:160] = 0.0, 22.0, 16.0, -1e-9  # on and just off the edges
    r[160:200], c[200:240] = 16.5, -0.5
    want = np.empty(n)
    for f in range(5):
        m = frame == f
        want[m] = ndimage.map_coordinates(stack[f], [r[m], c[m]], order=1, mode="constant", cval=np.nan)
    got = _bilinear(stack, frame, r, c)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).sum() > 240 and np.isfinite(want).sum() > n // 2  # both kinds tested
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-13, atol=0)
