"""Synthetic heart and thorax over the cardiac cycle, in patient coordinates.

The LV is described in a local frame: origin at the endocardial apex at ED, ``e3`` along the long
axis from apex to base, ``e1`` towards the septum (the RV), ``e2 = e3 x e1``: the anterior wall
is on the ``+e2`` side for every heart (local ``phi`` grows from the septum towards it; seen from
the apex, anterior -> septum -> inferior runs counter-clockwise), whatever the pose.  That is the
anatomy's handedness: naming by the patient's anterior direction instead mirrored the hearts
(1 in 90) whose pose turns ``e2`` slightly posterior.  In that frame
(cylindrical ``rho, phi, z``) the endocardium is the solid

    0 <= z <= L,   rho <= R_b * f(z / L) * H(z / L, phi)

closed by the base (mitral) plane ``z = L``, and the epicardium the solid
``-h_a <= z <= L, rho <= R_e * f((z + h_a) / (L + h_a)) * H``, with the profile
``f(u) = (1 - (1 - u)^2)^(p / 2)`` (``p = 1``: a half prolate ellipsoid; smaller ``p``: blunter)
and ``H`` low-order circumferential harmonics that give each subject an individual, non-symmetric
shape.  This parameterisation is *not* the prolate spheroidal model the fitting stage uses, so the
fit is tested against a shape it cannot represent exactly.

Given the six CAP clinical indices the construction is exact: the long-axis length follows from
EDV and sphericity, ``p`` from conicity, ``R_b`` from EDV, the wall from RWT, the ES cavity from EF
and LS, and the ES epicardium from conservation of myocardial volume (incompressible muscle).
Frames between ED and ES interpolate with a physiological time course (:func:`activation_curve`).

The RV is a crescent attached to the septum between two insertion points at ``phi = +-phi_ins``
on the epicardium; atria, aortic root, epicardial fat, chest wall, lungs, spine, descending aorta
and liver complete the thorax so that images look like a chest, not a donut on black.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Tissue classes (indices into the intensity table of the scanner).
AIR, LUNG, FAT, MUSCLE, LIVER, BONE, SOFT, LV_BLOOD, LV_MYO, RV_BLOOD, RV_MYO, OTHER_BLOOD, EPI_FAT = range(13)
N_TISSUES = 13

_GL_X, _GL_W = np.polynomial.legendre.leggauss(64)
_GL_U = 0.5 * (_GL_X + 1.0)
_GL_WU = 0.5 * _GL_W
_PHI_Q = np.linspace(0.0, 2 * np.pi, 96, endpoint=False)
MYOCARDIAL_DENSITY_G_PER_ML = 1.05


def profile(u: np.ndarray, p: float) -> np.ndarray:
    """Radius profile along the long axis, 0 at the apex (u=0), 1 at the base (u=1)."""
    u = np.clip(u, 0.0, 1.0)
    return np.clip(1.0 - (1.0 - u) ** 2, 0.0, 1.0) ** (p / 2.0)


def conicity_exponent(conicity: float) -> float:
    """Profile exponent ``p`` with ``f(1/3) = conicity`` (diameter 1/3 above apex / basal diameter)."""
    c = float(np.clip(conicity, 0.40, 0.97))
    return 2.0 * np.log(c) / np.log(5.0 / 9.0)


@dataclass(frozen=True)
class Harmonics:
    """Circumferential shape harmonics ``H(u, phi) = 1 + u * sum_k a_k cos(k phi) + b_k sin(k phi)``."""

    coef: np.ndarray  # (K, 2), k = 2..K+1 (k=1 would only move the axis)

    def angular(self, phi: np.ndarray) -> np.ndarray:
        """``G(phi) = sum_k a_k cos(k phi) + b_k sin(k phi)``, so that ``H = 1 + u G``."""
        phi = np.asarray(phi, dtype=float)
        g = np.zeros(phi.shape)
        for i, (a, b) in enumerate(self.coef):
            g = g + a * np.cos((i + 2) * phi) + b * np.sin((i + 2) * phi)
        return g

    def __call__(self, u: np.ndarray, phi: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        if g is None:
            g = self.angular(phi)
        return 1.0 + np.clip(u, 0, 1) * g

    def integral(self, p: float) -> float:
        """``I = int_0^1 int_0^2pi 1/2 f(u)^2 H(u, phi)^2 dphi du`` (volume = R^2 * length * I)."""
        u = _GL_U[:, None]
        vals = 0.5 * profile(u, p) ** 2 * self(u, _PHI_Q[None, :]) ** 2
        return float((vals.mean(axis=1) * 2 * np.pi) @ _GL_WU)


@dataclass(frozen=True)
class LVPhase:
    """LV geometry at one instant, in the local frame (mm)."""

    length_mm: float  # endocardial apex (z=0) to base plane (z=L)
    endo_radius_mm: float  # R_b
    epi_radius_mm: float  # R_e
    epi_apex_mm: float  # h_a: epicardial apex below the endocardial apex
    p: float
    harmonics: Harmonics

    def r_endo(self, z: np.ndarray, phi: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        """Endocardial radius at height ``z`` and angle ``phi`` (``g``: precomputed angular term)."""
        u = np.asarray(z) / self.length_mm
        return self.endo_radius_mm * profile(u, self.p) * self.harmonics(u, phi, g)

    def r_epi(self, z: np.ndarray, phi: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        u = (np.asarray(z) + self.epi_apex_mm) / (self.length_mm + self.epi_apex_mm)
        return self.epi_radius_mm * profile(u, self.p) * self.harmonics(u, phi, g)

    @property
    def cavity_volume_ml(self) -> float:
        return self.endo_radius_mm**2 * self.length_mm * self.harmonics.integral(self.p) / 1000.0

    @property
    def epi_volume_ml(self) -> float:
        i = self.harmonics.integral(self.p)
        return self.epi_radius_mm**2 * (self.length_mm + self.epi_apex_mm) * i / 1000.0

    @property
    def myocardial_volume_ml(self) -> float:
        return self.epi_volume_ml - self.cavity_volume_ml

    def implicit(self, local: np.ndarray, surface: str, polar: tuple | None = None) -> np.ndarray:
        """Negative inside the closed endo (cavity) or epi solid, positive outside (mm-like).

        ``polar`` = (rho, phi, g) precomputed for ``local`` (see :func:`polar_terms`).
        """
        z = local[..., 2]
        rho, phi, g = polar if polar is not None else polar_terms(local, self.harmonics)
        if surface == "endo":
            return np.maximum(np.maximum(rho - self.r_endo(z, phi, g), z - self.length_mm), -z)
        return np.maximum(np.maximum(rho - self.r_epi(z, phi, g), z - self.length_mm), -(z + self.epi_apex_mm))


def _ellipsoid(x: np.ndarray, y: np.ndarray, z: np.ndarray, c: np.ndarray, r: tuple) -> np.ndarray:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 < 1.0


def polar_terms(local: np.ndarray, harmonics: Harmonics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rho, phi, G(phi)) of local points: static per point, reused for every frame."""
    rho = np.hypot(local[..., 0], local[..., 1])
    phi = np.arctan2(local[..., 1], local[..., 0])
    return rho, phi, harmonics.angular(phi)


# Diastolic filling of the cycle (activation_curve), calibrated to published volume-curve features
# of normal adults of MESA's age (45-84 years), EF ~ 62 %:
# * peak filling rate 3.3 +- 0.6 EDV/s and time to peak filling 136 +- 23 ms after end-systole in
#   normal subjects (radionuclide volume curves; Bonow et al., Circulation 1981;64:315-323); PFR
#   falls with age (Miller et al., Am J Cardiol 1986;58:531-535);
# * the atrial share of filling rises with age to 30-45 % after 60 (Kuo et al., Am J Cardiol
#   1987;59:1174-1178) and the Doppler E/A ratio is 1.28 +- 0.25 at 41-60 years and 0.96 +- 0.18
#   above 60 (Nagueh et al., J Am Soc Echocardiogr 2009;22:107-133, normal values by age): filling
#   rate ratios of about 1.0-1.5 at MESA ages;
# * peak ejection rate about 2.5-3.5 EDV/s in the same radionuclide normals (the raised-cosine
#   systole gives 2.7-3.6 EDV/s at EF 62 %);
# * a diastasis of a few hundred ms at 50-65 bpm that vanishes (E and A fuse) above ~85 bpm.
# The generator gives (EF 62 %, 50-90 bpm): PFR 2.7-2.8 EDV/s, atrial peak 1.8-2.5 EDV/s, E/A
# 1.15-1.5, diastasis about 490 ms at 50 bpm and 55 ms at 90, time to PFR 92-97 ms: shorter than
# the radionuclide 136 +- 23 ms (which includes isovolumic relaxation) because a slower start of
# filling flattened the curve around ES so much that the CNN's ES frame was exact in only 6 of 8
# test exams (tests/synth/test_cycle.py checks these ranges).  The diastolic function is the same
# for every subject apart from heart rate: no age or disease effect yet.
ATRIAL_FILLING_FRACTION = 0.30  # share of the stroke volume filled by atrial contraction
DIASTASIS_FILLING_FRACTION = 0.08  # slow filling between the E and A waves
EARLY_FILLING_S = 0.25  # duration of the early (E) filling wave
ATRIAL_FILLING_S = 0.16  # atrial contraction, ending at the next R wave
EARLY_FILLING_SHAPE = (2.2, 2.9)  # Beta CDF of the E wave: slow start (relaxation), peak at 39 %


def rr_from_es_frac(es_frac: float) -> float:
    """R-R interval (s) implied by the ES fraction (inverse of :func:`make_heart`'s
    ``es_frac = 0.33 / sqrt(RR)``, its +-8 % jitter ignored)."""
    return (0.33 / es_frac) ** 2


def activation_curve(t_frac: np.ndarray, es_frac: float) -> np.ndarray:
    """Fraction of the ED-to-ES change at each time (0 = ED, 1 = ES), over one R-R interval.

    Systolic ejection as a raised cosine up to ES; diastole as the sum of three filling waves
    (fractions of the stroke volume): the early (E) wave, a Beta-CDF of ``EARLY_FILLING_S`` from
    ES (its slow start stands in for isovolumic relaxation), linear slow filling (diastasis) from
    the end of E to the start of the atrial wave, and the atrial (A) wave, a raised cosine over
    the last ``ATRIAL_FILLING_S`` before the next R wave.  The absolute durations use the R-R
    interval implied by ``es_frac``; at high heart rates they shrink so that E and A fit in
    diastole (they fuse; no diastasis).  Calibration: the comment block above.
    """
    from scipy.special import betainc

    t = np.mod(np.asarray(t_frac, dtype=float), 1.0)
    rr = rr_from_es_frac(es_frac)
    de = min(EARLY_FILLING_S / rr, 0.6 * (1 - es_frac))
    da = min(ATRIAL_FILLING_S / rr, 0.3 * (1 - es_frac))
    w = np.empty_like(t)
    s = t <= es_frac
    w[s] = 0.5 * (1 - np.cos(np.pi * t[s] / es_frac))
    td = t[~s]
    e_wave = betainc(*EARLY_FILLING_SHAPE, np.clip((td - es_frac) / de, 0.0, 1.0))
    a_start, d_start = 1.0 - da, es_frac + de
    a_wave = 0.5 * (1 - np.cos(np.pi * np.clip((td - a_start) / da, 0.0, 1.0)))
    if a_start > d_start:
        slow = np.clip((td - d_start) / (a_start - d_start), 0.0, 1.0)
    else:  # fused E and A waves: the slow-filling share arrives with the atrial wave
        slow = a_wave
    f_a, f_d = ATRIAL_FILLING_FRACTION, DIASTASIS_FILLING_FRACTION
    w[~s] = 1.0 - ((1 - f_a - f_d) * e_wave + f_d * slow + f_a * a_wave)
    return w


@dataclass(frozen=True)
class RVParams:
    insertion_half_angle_rad: float  # insertion points at phi = +-this on the epicardium
    depth_ed_mm: float  # RV cavity depth beyond the septum at mid-ventricle, ED
    depth_es_mm: float
    wall_mm: float
    apex_frac: float  # RV starts at z = apex_frac * L


@dataclass(frozen=True)
class Thorax:
    """Static surroundings in patient coordinates (mm)."""

    centre_xy: np.ndarray  # body ellipse centre (x, y)
    semi_axes: np.ndarray  # (a_x, a_y)
    subcut_fat_mm: float
    muscle_mm: float
    diaphragm_z_mm: float  # dome top under the heart
    spine_xy: np.ndarray
    desc_aorta_xy: np.ndarray


@dataclass
class Heart:
    """One subject's heart: ED/ES LV geometry, pose, RV and cycle timing."""

    ed: LVPhase
    es: LVPhase
    origin_mm: np.ndarray  # endocardial apex at ED, patient coordinates
    frame: np.ndarray  # 3x3, columns e1 (septal), e2, e3 (apex -> base)
    rv: RVParams
    thorax: Thorax
    es_frac: float  # ES time as a fraction of R-R
    # Angle of the aortic root (LV outflow) about the long axis, from e1 (septal) towards anterior;
    # None: the legacy placement, close to the septal direction (the shipped cine networks were
    # trained on it).  The clinical protocol draws 45-65 deg, so that its 3-chamber plane through
    # the outflow tract lies well apart from the 4-chamber one, as in real hearts.
    aortic_root_deg: float | None = None
    posterior_local: np.ndarray = field(init=False)  # patient posterior in local (e1, e2)
    _shape_integral: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._shape_integral = self.ed.harmonics.integral(self.ed.p)
        post = self.frame.T @ np.array([0.0, 1.0, 0.0])
        v = post[:2] / max(np.linalg.norm(post[:2]), 1e-9)
        self.posterior_local = v

    # ---- cycle -------------------------------------------------------------------------------
    def phase(self, w: float) -> LVPhase:
        """LV geometry at activation ``w`` (0 = ED, 1 = ES)."""
        ed, es = self.ed, self.es
        length = ed.length_mm + w * (es.length_mm - ed.length_mm)
        vol = ed.cavity_volume_ml + w * (es.cavity_volume_ml - ed.cavity_volume_ml)
        h_a = ed.epi_apex_mm + w * (es.epi_apex_mm - ed.epi_apex_mm)
        i = self._shape_integral
        r_b = np.sqrt(vol * 1000.0 / (length * i))
        r_e = np.sqrt((ed.myocardial_volume_ml + vol) * 1000.0 / ((length + h_a) * i))
        return LVPhase(length, r_b, r_e, h_a, ed.p, ed.harmonics)

    # ---- coordinates -------------------------------------------------------------------------
    def to_local(self, xyz: np.ndarray) -> np.ndarray:
        return (np.asarray(xyz) - self.origin_mm) @ self.frame

    def to_patient(self, local: np.ndarray) -> np.ndarray:
        return np.asarray(local) @ self.frame.T + self.origin_mm

    # ---- labels ------------------------------------------------------------------------------
    def rv_ellipse(self, z: np.ndarray, w: float, ph: LVPhase, inner: bool) -> tuple[np.ndarray, ...]:
        """(centre c, semi-axis A along e1, semi-axis B along e2) of the RV outer/inner boundary."""
        rv = self.rv
        zc = np.minimum(z, ph.length_mm)
        re = ph.epi_radius_mm * profile((zc + ph.epi_apex_mm) / (ph.length_mm + ph.epi_apex_mm), ph.p)
        z0 = rv.apex_frac * ph.length_mm
        taper = np.sqrt(np.clip((z - z0) / (ph.length_mm - z0), 0.0, 1.0))
        above = np.clip(1.0 - (z - ph.length_mm) / 12.0, 0.0, 1.0)
        depth = (rv.depth_ed_mm + w * (rv.depth_es_mm - rv.depth_ed_mm)) * taper * above
        c = re * np.cos(rv.insertion_half_angle_rad)
        b = re * np.sin(rv.insertion_half_angle_rad)
        a = re + depth + rv.wall_mm - c
        if inner:
            a, b = a - rv.wall_mm, b - rv.wall_mm
        return c, a, b, depth

    def rv_inside(self, local: np.ndarray, w: float, ph: LVPhase, inner: bool) -> np.ndarray:
        x, y, z = local[..., 0], local[..., 1], local[..., 2]
        c, a, b, depth = self.rv_ellipse(z, w, ph, inner)
        ok = (depth > 0.5) & (a > 0) & (b > 0) & (x > c)
        with np.errstate(divide="ignore", invalid="ignore"):
            val = ((x - c) / a) ** 2 + (y / b) ** 2
        return ok & (val < 1.0)

    def heart_labels(self, xyz: np.ndarray, w: float) -> np.ndarray:
        """Tissue class of each point, or -1 where the heart leaves the background as it is."""
        return self.heart_labels_local(self.to_local(xyz), w)

    def heart_labels_local(self, loc: np.ndarray, w: float, polar: tuple | None = None) -> np.ndarray:
        """:meth:`heart_labels` for points already in the local frame (``polar``: see polar_terms)."""
        ph = self.phase(w)
        if polar is None:
            polar = polar_terms(loc, self.ed.harmonics)
        x, y, z = loc[..., 0], loc[..., 1], loc[..., 2]
        rho, phi, g = polar
        out = np.full(x.shape, -1, dtype=np.int8)
        cav = ph.implicit(loc, "endo", polar) < 0
        epi = ph.implicit(loc, "epi", polar) < 0
        rv_out = self.rv_inside(loc, w, ph, inner=False) & ~epi
        rv_in = self.rv_inside(loc, w, ph, inner=True) & ~epi
        L = ph.length_mm
        # Epicardial fat: thin band, thicker in the AV groove and at the RV insertions.
        fat_t = 2.0 + 3.0 * np.clip((z - (L - 15.0)) / 15.0, 0, 1) + 1.5 * (np.cos(2 * phi) > 0.3)
        near_epi = (rho < ph.r_epi(np.clip(z, -ph.epi_apex_mm, L), phi, g) + fat_t) & (z > -ph.epi_apex_mm - fat_t) & (z < L + 4)
        # Atria and aortic root above the base (local coordinates).
        pl = self.posterior_local
        re_b = ph.epi_radius_mm
        la_c = np.array([-0.3 * re_b + 14.0 * pl[0], 14.0 * pl[1], L + 20.0])
        ra_c = np.array([re_b + 12.0 + 6.0 * pl[0], 6.0 * pl[1], L + 16.0])
        ao_a = self.aortic_root_local(ph)
        ao_b = ao_a + np.array([-6.0 * pl[0], -6.0 * pl[1], 60.0])
        top = z > L - 8.0
        la = _ellipsoid(x, y, z, la_c, (23.0, 21.0, 20.0))
        ra = _ellipsoid(x, y, z, ra_c, (21.0, 20.0, 24.0))
        seg = ao_b - ao_a
        tt = np.clip(((x - ao_a[0]) * seg[0] + (y - ao_a[1]) * seg[1] + (z - ao_a[2]) * seg[2]) / (seg @ seg), 0, 1)
        ao = (x - ao_a[0] - tt * seg[0]) ** 2 + (y - ao_a[1] - tt * seg[1]) ** 2 + (z - ao_a[2] - tt * seg[2]) ** 2 < 169.0
        atria = (la | ra | ao) & (z > L - 6.0)
        atria_wall = ~atria & top & (
            _ellipsoid(x, y, z, la_c, (26.0, 24.0, 23.0)) | _ellipsoid(x, y, z, ra_c, (24.0, 23.0, 27.0))
        )
        out[near_epi] = EPI_FAT
        out[atria_wall] = MUSCLE
        out[atria] = OTHER_BLOOD
        out[rv_out] = RV_MYO
        out[rv_in] = RV_BLOOD
        out[epi] = LV_MYO
        out[cav] = LV_BLOOD
        return out

    def aortic_root_local(self, ph: LVPhase) -> np.ndarray:
        """Local position of the base of the aortic root (where the outflow tract leaves the LV)."""
        pl = self.posterior_local
        if self.aortic_root_deg is None:
            return np.array([0.3 * ph.epi_radius_mm - 12.0 * pl[0], -12.0 * pl[1], ph.length_mm - 4.0])
        a = np.radians(self.aortic_root_deg)  # from the septum towards the anterior wall (+e2)
        r = 0.8 * ph.epi_radius_mm
        return np.array([r * np.cos(a), r * np.sin(a), ph.length_mm - 4.0])

    def background_labels(self, xyz: np.ndarray) -> np.ndarray:
        """Static thorax tissue class of each point."""
        th = self.thorax
        x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
        dx, dy = x - th.centre_xy[0], y - th.centre_xy[1]
        ax, ay = th.semi_axes
        r = np.sqrt((dx / ax) ** 2 + (dy / ay) ** 2)  # 1 at the skin
        scale = np.sqrt(ax * ay)
        out = np.full(x.shape, AIR, dtype=np.int8)
        body = r < 1.0
        inner_fat = 1.0 - th.subcut_fat_mm / scale
        inner_muscle = inner_fat - th.muscle_mm / scale
        out[body] = FAT
        out[body & (r < inner_fat)] = MUSCLE
        cavity = r < inner_muscle
        out[cavity] = LUNG
        # Mediastinum: an ellipsoid of soft tissue and fat around the heart and great vessels.
        loc = self.to_local(xyz)
        # Lungs touch most of the heart; soft tissue and fat sit around the great vessels above
        # the base, and a pericardial fat pad in front of the heart.
        pl = self.posterior_local
        c = np.array([-8.0 * pl[0], -8.0 * pl[1], self.ed.length_mm + 25.0])
        radii = np.array([self.ed.epi_radius_mm + 18.0, self.ed.epi_radius_mm + 18.0, 45.0])
        e = ((loc[..., 0] - c[0]) / radii[0]) ** 2 + ((loc[..., 1] - c[1]) / radii[1]) ** 2 + ((loc[..., 2] - c[2]) / radii[2]) ** 2
        out[cavity & (e < 1.0)] = SOFT
        ant = -(loc[..., 0] * pl[0] + loc[..., 1] * pl[1])  # mm towards the patient's front
        rho = np.hypot(loc[..., 0], loc[..., 1])
        pad = cavity & (rho < self.ed.epi_radius_mm + 14.0) & (ant > 0.55 * rho) & (loc[..., 2] > 0.15 * self.ed.length_mm) & (loc[..., 2] < self.ed.length_mm + 10.0)
        out[pad] = FAT
        # liver (right) and stomach/spleen (left) under the diaphragm dome
        dome = th.diaphragm_z_mm - 0.0035 * ((x - th.centre_xy[0] + 30.0) ** 2 + (y - th.centre_xy[1]) ** 2)
        under = cavity & (z < dome)
        out[under] = SOFT
        out[under & (x < th.centre_xy[0] + 35.0)] = LIVER
        spine = np.hypot(x - th.spine_xy[0], y - th.spine_xy[1]) < 17.0
        out[spine & body] = BONE
        dao = np.hypot(x - th.desc_aorta_xy[0], y - th.desc_aorta_xy[1]) < 11.0
        out[dao & cavity] = OTHER_BLOOD
        return out

    # ---- reference surfaces ------------------------------------------------------------------
    def surface_grid(self, w: float, surface: str, n_long: int = 29, n_circ: int = 29) -> np.ndarray:
        """Points on the true surface at activation ``w``, shape (n_long * n_circ, 3), patient mm.

        ``i_long`` 0 is the apex, ``n_long - 1`` the base; ``phi = 2 pi i_circ / n_circ`` from e1.
        """
        ph = self.phase(w)
        phi = np.linspace(0, 2 * np.pi, n_circ, endpoint=False)
        if surface == "endo":
            z = np.linspace(0.0, ph.length_mm, n_long)
            r = ph.r_endo(z[:, None], phi[None, :])
        else:
            z = np.linspace(-ph.epi_apex_mm, ph.length_mm, n_long)
            r = ph.r_epi(z[:, None], phi[None, :])
        loc = np.stack([r * np.cos(phi), r * np.sin(phi), np.broadcast_to(z[:, None], r.shape)], axis=-1)
        return self.to_patient(loc.reshape(-1, 3))


def build_phase_pair(
    edv_ml: float, sphericity: float, ef: float, rwt: float, conicity: float, ls: float,
    harmonics: Harmonics, apex_thickness_ratio: float = 0.7, apical_thickening: float = 0.35,
) -> tuple[LVPhase, LVPhase]:
    """ED and ES LV geometry realising the clinical indices (fractions, not percent).

    * sphericity = EDV / (pi/6 * L^3)  ->  L
    * conicity   = f(1/3)              ->  p
    * RWT = 2 h / D with D the ED endocardial diameter and h the wall thickness at mid-ventricle
      (u = 0.5), measured on the posterior wall (phi = pi, opposite the septum)
    * ESV = EDV (1 - EF);  L_es = L (1 - LS);  myocardial volume is conserved.
    """
    length = (6.0 * edv_ml * 1000.0 / (np.pi * sphericity)) ** (1.0 / 3.0)
    p = conicity_exponent(conicity)
    i = harmonics.integral(p)
    r_b = np.sqrt(edv_ml * 1000.0 / (length * i))
    u_m = 0.5
    z_m = u_m * length
    phi_post = np.pi
    r_endo_m = r_b * profile(u_m, p) * harmonics(u_m, phi_post)
    d_mid = 2.0 * r_b * profile(u_m, p)  # diameter of the mean cross-section
    h = rwt * d_mid / 2.0
    h_a = apex_thickness_ratio * h
    u_e = (z_m + h_a) / (length + h_a)
    r_e = (r_endo_m + h) / (profile(u_e, p) * harmonics(u_e, phi_post))
    ed = LVPhase(length, r_b, r_e, h_a, p, harmonics)
    esv = edv_ml * (1.0 - ef)
    length_es = length * (1.0 - ls)
    r_b_es = np.sqrt(esv * 1000.0 / (length_es * i))
    h_a_es = h_a * (1.0 + apical_thickening)
    r_e_es = np.sqrt((ed.myocardial_volume_ml + esv) * 1000.0 / ((length_es + h_a_es) * i))
    es = LVPhase(length_es, r_b_es, r_e_es, h_a_es, p, harmonics)
    return ed, es


def measured_indices(heart: Heart, bsa_m2: float) -> dict[str, float]:
    """Clinical indices measured back from the geometry (CAP definitions), for checks."""
    ed, es = heart.ed, heart.es
    edv, esv = ed.cavity_volume_ml, es.cavity_volume_ml
    d_mid = 2.0 * np.mean(ed.r_endo(np.full(96, 0.5 * ed.length_mm), _PHI_Q))
    z_m = 0.5 * ed.length_mm
    thick = float(ed.r_epi(z_m, np.pi) - ed.r_endo(z_m, np.pi))
    d_third = 2.0 * np.mean(ed.r_endo(np.full(96, ed.length_mm / 3.0), _PHI_Q))
    d_base = 2.0 * np.mean(ed.r_endo(np.full(96, ed.length_mm), _PHI_Q))
    return {
        "edv_ml": edv, "esv_ml": esv, "sv_ml": edv - esv, "ef_pct": 100.0 * (edv - esv) / edv,
        "lv_mass_g": MYOCARDIAL_DENSITY_G_PER_ML * ed.myocardial_volume_ml,
        "edvi": edv / bsa_m2, "esvi": esv / bsa_m2,
        "lvmi": MYOCARDIAL_DENSITY_G_PER_ML * ed.myocardial_volume_ml / bsa_m2,
        "sphericity_pct": 100.0 * edv * 1000.0 / (np.pi / 6.0 * ed.length_mm**3),
        "rwt_pct": 100.0 * 2.0 * thick / d_mid,
        "conicity_pct": 100.0 * d_third / d_base,
        "ls_pct": 100.0 * (ed.length_mm - es.length_mm) / ed.length_mm,
    }


def make_heart(
    rng: np.random.Generator, indices: dict[str, float], bsa_m2: float, height_cm: float,
    weight_kg: float, heart_rate: float,
) -> Heart:
    """A subject's heart realising target clinical ``indices`` (percent values, CAP names)."""
    harm = Harmonics(np.array([rng.normal(0, 0.035, 2), rng.normal(0, 0.02, 2)]))
    ed, es = build_phase_pair(
        edv_ml=indices["edvi"] * bsa_m2,
        sphericity=indices["sphericity_pct"] / 100.0,
        ef=indices["ef_pct"] / 100.0,
        rwt=indices["rwt_pct"] / 100.0,
        conicity=indices["conicity_pct"] / 100.0,
        ls=indices["ls_pct"] / 100.0,
        harmonics=harm,
        apex_thickness_ratio=rng.uniform(0.6, 0.8),
        apical_thickening=rng.uniform(0.2, 0.5),
    )
    # Pose: the apex points left, anterior and inferior (LPS), with individual variation.
    from scipy.spatial.transform import Rotation

    apex_dir = np.array([0.62, -0.45, -0.64])
    apex_dir /= np.linalg.norm(apex_dir)
    tilt = Rotation.from_rotvec(rng.normal(0, np.radians(9.0), 3)).as_matrix()
    e3 = -(tilt @ apex_dir)
    sept = np.array([-0.75, -0.6, 0.2])  # towards the RV: right and anterior
    e1 = sept - (sept @ e3) * e3
    e1 /= np.linalg.norm(e1)
    roll = Rotation.from_rotvec(e3 * rng.normal(0, np.radians(8.0))).as_matrix()
    e1 = roll @ e1
    e2 = np.cross(e3, e1)
    frame = np.stack([e1, e2, e3], axis=1)
    bmi = weight_kg / (height_cm / 100.0) ** 2
    ax = 150.0 + 70.0 * (bsa_m2 - 1.9) + rng.normal(0, 8)
    ay = 105.0 + 40.0 * (bsa_m2 - 1.9) + rng.normal(0, 6)
    body_c = rng.normal(0, 8, 2)
    centre = np.array([body_c[0] + 22.0 + rng.normal(0, 8), body_c[1] - 18.0 + rng.normal(0, 6), rng.normal(0, 20)])
    origin = centre - 0.5 * ed.length_mm * e3
    rv = RVParams(
        insertion_half_angle_rad=np.radians(rng.uniform(52, 66)),
        depth_ed_mm=rng.uniform(17, 27) * np.sqrt(bsa_m2 / 1.9),
        depth_es_mm=0.0,
        wall_mm=rng.uniform(3.0, 4.5),
        apex_frac=rng.uniform(0.15, 0.3),
    )
    rv = RVParams(rv.insertion_half_angle_rad, rv.depth_ed_mm, rv.depth_ed_mm * rng.uniform(0.45, 0.65), rv.wall_mm, rv.apex_frac)
    tmp = Heart(ed, es, origin, frame, rv, Thorax(body_c, np.array([ax, ay]), 0, 0, 0, body_c, body_c), 0.35)
    lowest = tmp.surface_grid(0.0, "epi")[:, 2].min()
    thorax = Thorax(
        centre_xy=body_c, semi_axes=np.array([ax, ay]),
        subcut_fat_mm=float(np.clip(6.0 + 1.1 * (bmi - 22.0), 4.0, 35.0)), muscle_mm=rng.uniform(8, 14),
        diaphragm_z_mm=float(lowest - rng.uniform(1.0, 4.0)),
        spine_xy=np.array([body_c[0] + rng.normal(0, 4), body_c[1] + ay - 42.0]),
        desc_aorta_xy=np.array([body_c[0] + 24.0, body_c[1] + ay - 70.0]),
    )
    rr_s = 60.0 / heart_rate
    es_frac = float(np.clip(0.33 * np.sqrt(rr_s) / rr_s * rng.uniform(0.92, 1.08), 0.25, 0.48))
    return Heart(ed, es, origin, frame, rv, thorax, es_frac)
