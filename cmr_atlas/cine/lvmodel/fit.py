"""Least-squares fitting of the lambda fields, with optional joint breath-hold slice shifts.

Unknowns: one lambda field (a :class:`HermiteMesh` parameter vector) per phase and surface, and,
with breath-hold correction, a 2D in-plane translation per SAX slice shared by all phases (the
slices of one breath-hold are displaced alike at ED and ES); with ``FitSettings.through_plane`` a
third component along the plane normal, under a ridge (``through_plane_ridge``).  Data points carry the phase, surface,
weight and (for SAX points) the slice they come from; the corrected point is
``observed - shift(slice)`` (sign convention of :mod:`cmr_atlas.synth.truth`).

Each Gauss-Newton iteration (a) projects every corrected data point onto its current surface
(closest point, a vectorised damped Gauss-Newton in (mu, theta) warm-started from the last
iteration), (b) linearises the signed normal distance ``r = n . (S(mu, theta) - p)`` in the lambda
parameters (``dr/dlam = n . X_lam``) and the shifts (``dr/ds = n``), and (c) solves the Sobolev-
regularised, robustly reweighted normal equations for all unknowns at once (dense, a few hundred
unknowns).  Breath-hold stage: strong smoothing, shifts free.  Final stage: shifts fixed, normal
smoothing, Huber then Tukey weights so that outlying contours (a bad basal slice) lose their pull.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.cine.lvmodel import prolate
from cmr_atlas.cine.lvmodel.hermite import HermiteMesh


@dataclass
class FitData:
    """Data points of one exam in the model's local frame."""

    points: np.ndarray  # (N, 3) observed points, local mm
    field: np.ndarray  # (N,) index of the lambda field: phase_index * 2 + surface_index
    weight: np.ndarray  # (N,) relative weights
    slice_id: np.ndarray  # (N,) index into shift_basis, -1 for points that are never shifted
    shift_basis: np.ndarray  # (K, C, 3) unit vectors of each slice's shift: row, col cosines (C = 2)
    # and, with through-plane correction, the plane normal (C = 3)
    n_fields: int = 4
    zero_mean: np.ndarray | None = None  # (K,) slices whose shifts must sum to zero (the gauge)


@dataclass
class FitSettings:
    """Weights and iteration limits; the defaults are the documented ones (docs/lvmodel.md)."""

    mesh: HermiteMesh = field(default_factory=HermiteMesh)
    smooth_breath_hold: float = 3e-4  # Sobolev weight of the highly regularised stage
    smooth_final: float = 1e-4  # Sobolev weight of the final fit
    w_first: float = 0.0  # first-derivative share of the Sobolev norm
    w_second: float = 1.0  # second-derivative share
    shift_ridge: float = 1e-3  # tiny ridge on shifts (per unit data weight) for empty slices
    max_shift_mm: float = 15.0  # larger estimated shifts are clipped (an implausible breath-hold)
    # through-plane component (shift_basis with C = 3): a ridge of this many median-weight data
    # points at 1 mm, i.e. a prior SD of sigma_floor_mm / sqrt(this) (docs/motion.md)
    through_plane_ridge: float = 150.0
    through_plane: bool = False  # also estimate each slice's through-plane shift within the ED/ES fit
    # (weakly identifiable; config fit.through_plane uses cmr_atlas.cine.lvmodel.through_plane instead)
    bh_iterations: int = 15
    final_iterations: int = 8
    tol_bh_mm: float = 0.05  # breath-hold stage stops when no shift or surface point moves more
    tol_mm: float = 0.02  # final stage stops when no surface point moves more than this
    reweight_iterations: int = 3  # robust weights are re-estimated this often, then frozen
    huber_k: float = 1.345
    tukey_c: float = 4.685
    sigma_floor_mm: float = 1.0


@dataclass
class FitResult:
    params: np.ndarray  # (n_fields, n_params)
    shifts: np.ndarray  # (K, C) shift coefficients along shift_basis
    mu: np.ndarray  # (N,) projections of the data points at convergence
    theta: np.ndarray
    residual: np.ndarray  # (N,) signed normal distance at convergence, mm
    robust_weight: np.ndarray  # (N,) final robust weight (0 = rejected)
    iterations: int
    converged: bool


def surface_terms(mesh: HermiteMesh, d: float, x: np.ndarray, mu: np.ndarray, theta: np.ndarray,
                  with_basis: bool = False, field: np.ndarray | None = None):
    """Surface point S, tangents S_mu, S_theta, X_lam (and basis B) at (mu, theta) of one field
    (or of several: ``x`` (n_fields, n_params) and each point's ``field``)."""
    lam, lam_mu, lam_th = mesh.evaluate(x, mu, theta, ((0, 0), (1, 0), (0, 1)), field)
    b = mesh.basis(mu, theta) if with_basis else None
    s, x_lam, x_mu, x_th = prolate.cartesian_and_jacobian(lam, mu, theta, d)
    s_mu = x_lam * lam_mu[:, None] + x_mu
    s_th = x_lam * lam_th[:, None] + x_th
    return s, s_mu, s_th, x_lam, b


def _normals(s_mu: np.ndarray, s_th: np.ndarray, x_lam: np.ndarray) -> np.ndarray:
    n = np.cross(s_mu, s_th)
    nn = np.linalg.norm(n, axis=1)
    # At the pole S_theta vanishes: fall back to the lambda direction (along the axis there).
    bad = nn < 1e-6 * (np.linalg.norm(s_mu, axis=1) + 1e-12) ** 2
    n[bad] = x_lam[bad]
    n /= np.linalg.norm(n, axis=1)[:, None]
    # Orient outwards (along increasing lambda) so residual signs mean something.
    n *= np.sign(np.einsum("ij,ij->i", n, x_lam) + 1e-300)[:, None]
    return n


def project(mesh: HermiteMesh, d: float, x: np.ndarray, p: np.ndarray, mu: np.ndarray,
            theta: np.ndarray, n_iter: int = 4,
            field: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Closest points on the surface of field ``x`` to ``p``: damped Gauss-Newton.

    Iterates in the pole-regular chart ``(u, v) = mu (cos theta, sin theta)`` so that points near
    the apex converge (theta is undefined at the pole and a step may cross it).
    """
    mu = np.maximum(mu.copy(), 1e-4)
    theta = theta.copy()
    for _ in range(n_iter):
        s, s_mu, s_th, _, _ = surface_terms(mesh, d, x, mu, theta, field=field)
        e = s - p
        c, sn = np.cos(theta)[:, None], np.sin(theta)[:, None]
        s_th_mu = s_th / mu[:, None]
        s_u = s_mu * c - s_th_mu * sn
        s_v = s_mu * sn + s_th_mu * c
        a11 = np.einsum("ij,ij->i", s_u, s_u)
        a22 = np.einsum("ij,ij->i", s_v, s_v)
        a12 = np.einsum("ij,ij->i", s_u, s_v)
        g1 = np.einsum("ij,ij->i", s_u, e)
        g2 = np.einsum("ij,ij->i", s_v, e)
        damp = 1e-3 * (a11 + a22) + 1e-9
        a11 = a11 + damp
        a22 = a22 + damp
        det = a11 * a22 - a12 * a12
        du = -(a22 * g1 - a12 * g2) / det
        dv = -(a11 * g2 - a12 * g1) / det
        step = np.hypot(du, dv)
        scale = np.minimum(1.0, 0.3 / np.maximum(step, 1e-12))  # at most 0.3 rad per iteration
        u = mu * c[:, 0] + scale * du
        v = mu * sn[:, 0] + scale * dv
        mu = np.clip(np.hypot(u, v), 1e-4, mesh.mu_max)
        theta = np.mod(np.arctan2(v, u), 2 * np.pi)
    return mu, theta


def initial_params(mesh: HermiteMesh, d: float, data: FitData, unit_smooth: np.ndarray,
                   smooth: float) -> np.ndarray:
    """Fit each field's lambda to the data's own prolate coordinates (linear, heavily smoothed).

    Smoothing pulls towards the constant field at the data's median lambda (a confocal spheroid),
    so the fit is defined even where the data are sparse.
    """
    lam, mu, th = prolate.to_prolate(data.points, d)
    area = 2 * np.pi * (1 - np.cos(mesh.mu_max) + 0.1 * mesh.mu_max)
    out = np.zeros((data.n_fields, mesh.n_params))
    for f in range(data.n_fields):
        m = data.field == f
        if not m.any():
            continue
        b = mesh.basis(mu[m], th[m])
        w = data.weight[m]
        reg = smooth * w.sum() / area * unit_smooth + 1e-6 * w.sum() * np.eye(mesh.n_params)
        x_med = _constant_params(mesh, float(np.median(lam[m])))
        h = (b * w[:, None]).T @ b + reg
        out[f] = np.linalg.solve(h, (b * w[:, None]).T @ lam[m] + reg @ x_med)
    return out


def _constant_params(mesh: HermiteMesh, value: float) -> np.ndarray:
    """Parameters of the constant field ``value``."""
    x = np.zeros(mesh.n_params)
    x[0] = value  # apex l0
    full_vals = np.arange(4 * mesh.n_theta, mesh.n_full, 4)  # f DOFs of non-apex nodes
    x[3 + (full_vals - 4 * mesh.n_theta)] = value
    return x


def _robust_weights(r: np.ndarray, w0: np.ndarray, kind: str, s: FitSettings) -> np.ndarray:
    active = w0 > 0
    if kind == "none" or not active.any():
        return np.ones_like(r)
    med = np.median(r[active])
    sigma = max(1.4826 * np.median(np.abs(r[active] - med)), s.sigma_floor_mm)
    a = np.abs(r)
    if kind == "huber":
        c = s.huber_k * sigma
        return np.where(a <= c, 1.0, c / np.maximum(a, 1e-12))
    c = s.tukey_c * sigma
    return np.where(a < c, (1 - (a / c) ** 2) ** 2, 0.0)


@functools.lru_cache(maxsize=8)
def _smoothing(mesh: HermiteMesh, w_first: float, w_second: float) -> np.ndarray:
    """The mesh's Sobolev matrix, computed once per layout (every cine frame's fit uses it)."""
    out = mesh.smoothing(w_first, w_second)
    out.flags.writeable = False
    return out


class _Problem:
    """Assembles and solves the regularised Gauss-Newton systems of one exam."""

    def __init__(self, data: FitData, d: float, s: FitSettings):
        self.data, self.d, self.s = data, d, s
        self.mesh = s.mesh
        self.k = data.shift_basis.shape[0]
        self.lm = 1e-3  # Levenberg-Marquardt damping, adapted step by step
        lam, mu, th = prolate.to_prolate(data.points, d)
        self.mu, self.theta = mu, th
        # Scale of the smoothing: the data term per unit lambda, per unit parametric area.
        x_lam, _, _ = prolate.jacobian(lam, mu, th, d)
        g2 = np.einsum("ij,ij->i", x_lam, x_lam)
        self.unit_smooth = _smoothing(self.mesh, s.w_first, s.w_second)
        area = 2 * np.pi * (1 - np.cos(self.mesh.mu_max) + 0.1 * self.mesh.mu_max)
        self.scale = np.array(
            [(data.weight[data.field == f] * g2[data.field == f]).sum() / area
             for f in range(data.n_fields)]
        )
        self._last: tuple | None = None  # (x, shifts, r, n, g) of the current projections

    def current(self, x: np.ndarray, shifts: np.ndarray):
        """:meth:`residuals` at ``(x, shifts)``, reusing those of the step that moved there: an
        accepted Levenberg-Marquardt step has just projected every point onto that surface, so
        projecting again at the start of the next step would only refine converged projections
        (it cost a third of the fit)."""
        last = self._last
        if last is not None and np.array_equal(last[0], x) and np.array_equal(last[1], shifts):
            return last[2:]
        r, n, g = self.residuals(x, shifts)
        self._last = (x.copy(), shifts.copy(), r, n, g)
        return r, n, g

    def residuals(self, x: np.ndarray, shifts: np.ndarray, n_proj: int = 3):
        """Signed distances r, normals n and dr/dlam g of all points (all fields in one pass)."""
        data = self.data
        p = self._corrected(shifts)
        self.mu, self.theta = project(self.mesh, self.d, x, p, self.mu, self.theta, n_proj,
                                      field=data.field)
        sp, s_mu, s_th, x_lam, _ = surface_terms(self.mesh, self.d, x, self.mu, self.theta,
                                                 field=data.field)
        n = _normals(s_mu, s_th, x_lam)
        e = sp - p
        # signed distance to the projected point: |S - p| never grows when a projection is
        # refined, so objective values stay comparable between iterations
        r = np.sign(np.einsum("ij,ij->i", n, e)) * np.linalg.norm(e, axis=1)
        g = np.einsum("ij,ij->i", n, x_lam)
        return r, n, g

    def rows(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per field: its point indices and basis matrix at the current projections."""
        out = {}
        for f in range(self.data.n_fields):
            m = np.flatnonzero(self.data.field == f)
            if m.size:
                out[f] = (m, self.mesh.basis(self.mu[m], self.theta[m]))
        return out

    def _corrected(self, shifts: np.ndarray) -> np.ndarray:
        data = self.data
        p = data.points.copy()
        sh = data.slice_id >= 0
        if self.k and sh.any():
            vec = np.einsum("kc,kcj->kj", shifts, data.shift_basis)  # (K, 3)
            p[sh] -= vec[data.slice_id[sh]]
        return p

    def step(self, x, shifts, smooth, robust, estimate_shifts, rw=None):
        """One Levenberg-Marquardt step; returns new (x, shifts), residuals, robust weights and
        the largest move (mm).  ``rw``: robust weights to keep (else recomputed from residuals)."""
        data, s, mesh = self.data, self.s, self.mesh
        r, n, g = self.current(x, shifts)
        rows = self.rows()
        if rw is None:
            rw = _robust_weights(r, data.weight, robust, s)
        w = data.weight * rw
        npar = mesh.n_params
        nf = data.n_fields
        use_shift = estimate_shifts and self.k > 0
        c = data.shift_basis.shape[1]
        nsh = c * self.k if use_shift else 0
        ntot = nf * npar + nsh
        h = np.zeros((ntot, ntot))
        rhs = np.zeros(ntot)
        w_med = max(float(np.median(data.weight)), 1e-6)
        ridge = np.array([s.shift_ridge, s.shift_ridge, s.through_plane_ridge][:c]) * w_med
        # gauge: the 3D sum of the zero-mean slices' shifts is held at zero (stiff penalty)
        a, rho = None, 0.0
        if use_shift and data.zero_mean is not None and data.zero_mean.any():
            a = (data.shift_basis * data.zero_mean[:, None, None]).reshape(-1, 3).T  # (3, CK)
            rho = 10.0 * float(w.sum())
        if use_shift:
            # dr/dc_k = n . basis_k for SAX points
            sid = data.slice_id
            js = np.zeros((len(r), c))
            sax = sid >= 0
            js[sax] = np.einsum("ij,icj->ic", n[sax], data.shift_basis[sid[sax]])
        for f, (m, b) in rows.items():
            sl = slice(f * npar, (f + 1) * npar)
            jb = b * g[m][:, None]
            wm = w[m]
            reg = smooth * self.scale[f] * self.unit_smooth
            jbw = jb * wm[:, None]  # weighted once for the normal matrix, right-hand side and shifts
            h[sl, sl] = jbw.T @ jb + reg
            rhs[sl] = -(jbw.T @ r[m] + reg @ x[f])
            if use_shift:
                sax = data.slice_id[m] >= 0
                if sax.any():
                    mm = m[sax]
                    kk = data.slice_id[mm]
                    wj = jbw[sax]
                    # one-hot layout of dr/dc: column C k + j of point i holds js[i, j]
                    onehot = np.zeros((mm.size, nsh))
                    idx = np.arange(mm.size)
                    for j in range(c):
                        onehot[idx, c * kk + j] = js[mm, j]
                    cross = wj.T @ onehot
                    h[sl, nf * npar:] = cross
                    h[nf * npar:, sl] = cross.T
        if use_shift:
            sax = data.slice_id >= 0
            kk = data.slice_id[sax]
            ws = w[sax]
            jss = js[sax]
            hs = np.zeros((self.k, c, c))
            np.add.at(hs, kk, (jss[:, :, None] * jss[:, None, :]) * ws[:, None, None])
            gs = np.zeros((self.k, c))
            np.add.at(gs, kk, jss * (ws * r[sax])[:, None])
            blk = np.zeros((nsh, nsh))  # per-slice C x C blocks
            for k in range(self.k):  # K small blocks (a dozen), cheap
                blk[c * k:c * k + c, c * k:c * k + c] = hs[k] + np.diag(ridge)
            rhs[nf * npar:] = -(gs.ravel() + (shifts * ridge).ravel())
            if a is not None:
                blk += rho * a.T @ a
                rhs[nf * npar:] -= rho * a.T @ (a @ shifts.ravel())
            h[nf * npar:, nf * npar:] = blk
        empty = np.diag(h) == 0  # fields without data
        h[empty, empty] = 1.0

        def objective(xx, ss, rr):
            val = float(w @ rr**2)
            for f in rows:
                val += smooth * self.scale[f] * float(xx[f] @ self.unit_smooth @ xx[f])
            if use_shift:
                val += float((ss**2 * ridge).sum())
                if a is not None:
                    val += rho * float(((a @ ss.ravel()) ** 2).sum())
            return val

        # Levenberg-Marquardt: accept a step only if it lowers the (fixed-weight) objective; the
        # projections make the problem non-linear near the apex and the base.
        f0 = objective(x, shifts, r)
        saved = (self.mu.copy(), self.theta.copy(), self._last)
        diag = np.diag(h).copy()
        for _ in range(8):
            delta = np.linalg.solve(h + self.lm * np.diag(diag), rhs)
            x_new = x + delta[: nf * npar].reshape(nf, npar)
            sh_new = shifts
            if use_shift:
                sh_new = shifts + delta[nf * npar:].reshape(self.k, c)
                norm = np.linalg.norm(sh_new, axis=1)
                big = norm > s.max_shift_mm
                sh_new[big] *= (s.max_shift_mm / norm[big])[:, None]
            r_new, n_new, g_new = self.residuals(x_new, sh_new)
            if objective(x_new, sh_new, r_new) <= f0:
                self.lm = max(self.lm / 3.0, 1e-7)
                self._last = (x_new.copy(), np.array(sh_new, copy=True), r_new, n_new, g_new)
                break
            self.mu, self.theta, self._last = saved[0].copy(), saved[1].copy(), saved[2]
            self.lm *= 10.0
        else:  # no descent: stay (converged as far as this linearisation can tell)
            return x, shifts, r, rw, 0.0
        # size of the update in mm: lambda change times its scale factor, and shift change
        move = np.abs(g * (_field_delta(rows, delta[: nf * npar].reshape(nf, npar), len(r))))
        move_mm = float(move.max()) if move.size else 0.0
        if use_shift:
            move_mm = max(move_mm, float(np.abs(sh_new - shifts).max()))
        return x_new, sh_new, r, rw, move_mm


def _field_delta(rows, dx, n):
    out = np.zeros(n)
    for f, (m, b) in rows.items():
        out[m] = b @ dx[f]
    return out


@dataclass
class ShiftStage:
    """:func:`fit` after its breath-hold stage: ``shifts`` are final (the final stage holds them),
    the lambda fields not yet.  :func:`finish_fit` completes it; a caller that needs only the
    shifts (the LAX registration's plain fit, usually replaced by its refit) can stop here."""

    problem: _Problem
    x: np.ndarray
    shifts: np.ndarray
    iterations: int
    converged: bool
    finished: bool = False


def fit_shifts(data: FitData, d: float, settings: FitSettings | None = None, *,
               breath_hold: bool) -> ShiftStage:
    """:func:`fit`'s breath-hold stage (none without ``breath_hold`` or shifted slices)."""
    s = settings or FitSettings()
    prob = _Problem(data, d, s)
    x = initial_params(s.mesh, d, data, prob.unit_smooth, s.smooth_breath_hold)
    shifts = np.zeros((prob.k, data.shift_basis.shape[1]))
    it = 0
    converged = True
    # Robust weights are re-estimated for the first iterations of each stage, then frozen so
    # that the stage minimises one objective (changing weights make steps zig-zag).
    if breath_hold and prob.k:
        conv = False
        rw = None
        for i in range(s.bh_iterations):
            x, shifts, r, rw_used, move = prob.step(
                x, shifts, s.smooth_breath_hold, "huber", True, rw if i >= s.reweight_iterations else None)
            rw = rw_used
            it += 1
            if move < s.tol_bh_mm and i >= s.reweight_iterations:
                conv = True
                break
        converged &= conv
    return ShiftStage(prob, x, shifts, it, converged)


def finish_fit(stage: ShiftStage) -> FitResult:
    """:func:`fit`'s final stage (shifts fixed) from its breath-hold stage; once per stage."""
    if stage.finished:
        raise ValueError("this fit's final stage has run already")
    stage.finished = True
    prob, x, shifts, it = stage.problem, stage.x, stage.shifts, stage.iterations
    s, data = prob.s, prob.data
    conv = False
    rw = None
    for i in range(s.final_iterations):
        robust = "huber" if i < 2 else "tukey"
        x, shifts, r, rw_used, move = prob.step(
            x, shifts, s.smooth_final, robust, False, rw if i >= s.reweight_iterations + 1 else None)
        rw = rw_used
        it += 1
        if move < s.tol_mm and i >= s.reweight_iterations + 1:
            conv = True
            break
    r, n, g = prob.current(x, shifts)
    rw = _robust_weights(r, data.weight, "tukey", s)
    return FitResult(x, shifts, prob.mu.copy(), prob.theta.copy(), r, rw, it, stage.converged and conv)


def fit(data: FitData, d: float, settings: FitSettings | None = None, *,
        breath_hold: bool) -> FitResult:
    """Fit all lambda fields (and, with ``breath_hold``, the SAX slice shifts) of one exam."""
    return finish_fit(fit_shifts(data, d, settings, breath_hold=breath_hold))


def fit_warm(data: FitData, d: float, x0: np.ndarray, settings: FitSettings | None = None,
             iterations: int = 3, final_residuals: bool = True) -> FitResult:
    """Final-stage fit started from ``x0`` (a neighbouring cine frame's fields), shifts fixed.

    The per-frame fits of :mod:`cmr_atlas.cine.lvmodel.cycle`: the data are already corrected by
    the exam's breath-hold shifts, and consecutive frames differ by a few mm, so a few
    Levenberg-Marquardt steps (Huber weights on the first, Tukey after) reach the
    fit that a cold start needs ~10 to find.  ``final_residuals=False``: the result's projections,
    residuals and robust weights are those of the last step's start (no further projection pass;
    for callers that use only ``params``).
    """
    s = settings or FitSettings()
    prob = _Problem(data, d, s)
    x = np.array(x0, dtype=float, copy=True)
    shifts = np.zeros((prob.k, data.shift_basis.shape[1]))
    converged, it = False, 0
    for i in range(iterations):
        x, shifts, r, rw, move = prob.step(x, shifts, s.smooth_final, "huber" if i == 0 else "tukey", False)
        it += 1
        if move < s.tol_mm:
            converged = True
            break
    if final_residuals or it == 0:
        r, _, _ = prob.current(x, shifts)
        rw = _robust_weights(r, data.weight, "tukey", s)
    return FitResult(x, shifts, prob.mu.copy(), prob.theta.copy(), r, rw, it, converged)
