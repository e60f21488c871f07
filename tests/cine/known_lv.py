"""A known LV for the model-fitting tests and benchmarks/fit_accuracy.py: truncated ellipsoids in a
random pose, cut by SAX and LAX image planes, with per-slice breath-hold shifts and landmarks, as
guide-point and slice tables.

Local truth frame: origin at the base centre, +z towards the apex, +x towards the septum.  Endo and
epi are half-ellipsoids ``(x/bx)^2 + (y/by)^2 + (z/a)^2 = 1, z >= 0`` (base plane z = 0), so the
true cavity volume is ``2/3 pi a bx by``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane, plane_to_row

# (a, bx, by) in mm
SHAPES = {
    ("ED", "endo"): (78.0, 24.0, 27.0),
    ("ED", "epi"): (88.0, 33.0, 36.0),
    ("ES", "endo"): (70.0, 16.0, 18.0),
    ("ES", "epi"): (82.0, 28.0, 30.0),
}


@dataclass
class Fixture:
    guide_points: pd.DataFrame
    slices: pd.DataFrame
    shifts: pd.DataFrame  # exam_id, view, slice_index, dx_mm, dy_mm, dz_mm (patient)
    rotation: np.ndarray  # local -> patient
    origin: np.ndarray
    truth: dict  # edv_ml, esv_ml, lv_mass_g

    def planes(self):
        from cmr_atlas.core.geometry import planes_by_slice

        return planes_by_slice(self.slices, self.guide_points["exam_id"].iloc[0])

    def through_plane_errors(self, fit_shifts) -> tuple[np.ndarray, np.ndarray]:
        """(estimate, truth) of each SAX slice's through-plane shift in a fit's ``shifts`` (view,
        slice, d), each less its mean (the common level is not identifiable)."""
        planes = self.planes()
        tru = self.shifts[self.shifts["view"] == "sax"].set_index("slice_index")
        e, t = [], []
        for v, s, d in fit_shifts:
            if v == "sax" and s in tru.index:
                n = planes[("sax", s)].normal
                e.append(n @ d)
                t.append(n @ tru.loc[s, ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(float))
        return np.array(e) - np.mean(e), np.array(t) - np.mean(t)

    def surface_distance(self, points_local: np.ndarray, key: tuple[str, str]) -> np.ndarray:
        """Distance of local points to the true surface ``key`` = (phase, surface)."""
        return ellipsoid_distance(points_local, SHAPES[key])


def half_ellipsoid_ml(a: float, bx: float, by: float) -> float:
    return 2.0 / 3.0 * np.pi * a * bx * by / 1000.0


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _ray_contour(plane_c, u, v, shape, n_rays=72, t_range=None):
    """Points where rays from ``plane_c`` (in the plane spanned by u, v) meet an ellipsoid; local."""
    a, bx, by = shape
    s = np.array([1 / bx, 1 / by, 1 / a])
    t = np.linspace(0, 2 * np.pi, n_rays, endpoint=False) if t_range is None else t_range
    dirs = np.cos(t)[:, None] * u + np.sin(t)[:, None] * v
    # |s*(c + r dir)|^2 = 1 -> quadratic in r
    cd = s * plane_c
    dd = s * dirs
    qa = (dd * dd).sum(1)
    qb = 2 * (dd * cd).sum(1)
    qc = (cd * cd).sum() - 1
    disc = qb**2 - 4 * qa * qc
    ok = disc > 0
    r = (-qb + np.sqrt(np.maximum(disc, 0))) / (2 * qa)
    pts = plane_c + r[:, None] * dirs
    return pts[ok & (r > 0)]


def make_fixture(seed: int = 0, exam_id: str = "exam0", shift_sd_mm: float = 3.0,
                 noise_mm: float = 0.0, n_sax: int = 10, tilt_deg: float = 5.0,
                 source: str = "truth", through_plane: bool = True) -> Fixture:
    rng = np.random.default_rng(seed)
    rot = _random_rotation(rng)
    origin = rng.normal(0, 20, 3)

    def to_patient(q):
        return origin + np.asarray(q) @ rot.T

    def vec(q):
        return np.asarray(q) @ rot.T

    # SAX planes: normal roughly along the axis (tilted a little), 10 mm apart, first 6 mm below base
    tilt = np.radians(tilt_deg)
    nrm = np.array([np.sin(tilt), 0.0, np.cos(tilt)])
    u = np.cross([0.0, 1.0, 0.0], nrm)
    u /= np.linalg.norm(u)
    v = np.cross(nrm, u)
    spacing = 10.0
    rows, gp, shift_rows = [], [], []
    ps = 1.5
    sax_shifts = rng.normal(0, shift_sd_mm, (n_sax, 3))
    if not through_plane:  # keep only the in-plane part (identifiable from the contours)
        sax_shifts -= np.outer(sax_shifts @ nrm, nrm)

    def add_points(view, k, phase, surf, pts_local, d_local, kind="contour", landmark=None):
        pts = to_patient(pts_local + d_local)
        if noise_mm and kind == "contour":
            pts = pts + rng.normal(0, noise_mm, pts.shape)
        for i, p in enumerate(pts):
            gp.append(dict(exam_id=exam_id, source=source, phase=phase, frame=0 if phase == "ED" else 8,
                           view=view, slice_index=k, kind=kind,
                           surface=surf if kind == "contour" else None, landmark=landmark,
                           point_index=i, x_mm=p[0], y_mm=p[1], z_mm=p[2], weight=1.0))

    for k in range(n_sax):
        c = np.array([0.0, 0.0, 6.0 + spacing * k])
        plane = SlicePlane.centred(to_patient(c), vec(u), vec(v), (ps, ps), (160, 256), 6.0)
        rows.append(plane_to_row(exam_id, "sax", k, plane))
        d_local = sax_shifts[k]
        shift_rows.append(dict(exam_id=exam_id, view="sax", slice_index=k,
                               **dict(zip(("dx_mm", "dy_mm", "dz_mm"), vec(d_local)))))
        for phase in ("ED", "ES"):
            for surf in ("endo", "epi"):
                # the anatomy seen in this slice is displaced by d: cut the plane c - d
                pts = _ray_contour(c - d_local, u, v, SHAPES[(phase, surf)])
                if len(pts) >= 8:
                    add_points("sax", k, phase, surf, pts, d_local)
            # RV insertion points: the epicardial contour at +-60 degrees around the septum
            # (u ~ local +x), anterior on the +y side; none on the most apical slice
            ins = _ray_contour(c - d_local, u, v, SHAPES[(phase, "epi")],
                               t_range=np.radians([60.0, -60.0]))
            if len(ins) == 2 and k < n_sax - 1:
                add_points("sax", k, phase, None, ins[:1], d_local, "landmark", "rv_insert_anterior")
                add_points("sax", k, phase, None, ins[1:], d_local, "landmark", "rv_insert_posterior")
    # LAX planes through the long axis: 2ch at 90 degrees from the septum, 4ch through the septum
    for view, ang in (("lax_4ch", 0.0), ("lax_2ch", 90.0)):
        e = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang)), 0.0])
        plane = SlicePlane.centred(to_patient([0, 0, 45.0]), vec(e), vec([0, 0, 1.0]), (ps, ps),
                                   (256, 256), 6.0)
        rows.append(plane_to_row(exam_id, view, 0, plane))
        shift_rows.append(dict(exam_id=exam_id, view=view, slice_index=0, dx_mm=0.0, dy_mm=0.0,
                               dz_mm=0.0))
        zero = np.zeros(3)
        for phase in ("ED", "ES"):
            for surf in ("endo", "epi"):
                t = np.linspace(-np.pi / 2, np.pi / 2, 61)  # from one hinge via the apex to the other
                pts = _ray_contour(np.zeros(3), np.array([0, 0, 1.0]), e, SHAPES[(phase, surf)], t_range=t)
                add_points(view, 0, phase, surf, pts, zero)
            # mitral hinges: the endocardial base ring (z = 0) in this plane
            _, bx, by = SHAPES[(phase, "endo")]
            r_ = 1.0 / np.hypot(e[0] / bx, e[1] / by)
            names = ("mv_septal", "mv_lateral") if view == "lax_4ch" else ("mv_anterior", "mv_inferior")
            add_points(view, 0, phase, None, (r_ * e)[None], zero, "landmark", names[0])
            add_points(view, 0, phase, None, (-r_ * e)[None], zero, "landmark", names[1])
            a_epi = SHAPES[(phase, "epi")][0]
            add_points(view, 0, phase, None, np.array([[0, 0, a_epi]]), zero, "landmark", "apex")
    gpd = pd.DataFrame(gp)
    truth = {
        "edv_ml": half_ellipsoid_ml(*SHAPES[("ED", "endo")]),
        "esv_ml": half_ellipsoid_ml(*SHAPES[("ES", "endo")]),
        "lv_mass_g": 1.05 * (half_ellipsoid_ml(*SHAPES[("ED", "epi")])
                             - half_ellipsoid_ml(*SHAPES[("ED", "endo")])),
    }
    return Fixture(gpd, pd.DataFrame(rows), pd.DataFrame(shift_rows), rot, origin, truth)


def ellipsoid_distance(points_local: np.ndarray, shape: tuple[float, float, float]) -> np.ndarray:
    """Approximate distance of local points to an ellipsoid (first-order: |F| / |grad F|)."""
    a, bx, by = shape
    s = np.array([1 / bx, 1 / by, 1 / a]) ** 2
    f = (points_local**2 * s).sum(1) - 1
    grad = 2 * points_local * s
    return np.abs(f) / np.linalg.norm(grad, axis=1)

