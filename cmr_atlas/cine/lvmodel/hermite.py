"""Bicubic Hermite field lambda(mu, theta) on a prolate spheroidal (mu, theta) element mesh.

Layout (see docs/lvmodel.md): ``n_mu`` elements along mu in ``[0, mu_max]`` (mu = 0 is the apex)
and ``n_theta`` elements around theta in ``[0, 2 pi)`` (periodic).  Every node carries the four
bicubic Hermite degrees of freedom ``(f, df/dmu, df/dtheta, d2f/dmu dtheta)`` with derivatives taken
with respect to the global coordinates (radians), so element sizes enter the basis.

The apex (mu = 0) is a pole: all its nodes are the same point.  For a smooth surface there the field
must be ``lambda(mu, theta) ~ l0 + mu (a cos theta + b sin theta)``, so the apex nodes are tied to
three parameters ``(l0, a, b)`` by a constant matrix :attr:`HermiteMesh.constraint`; every other node
keeps its four free values.  All evaluation returns dense basis matrices in the reduced parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Gauss-Legendre points on [0, 1] for the smoothing integrals (4 per direction is exact for the
# polynomial parts of the integrands up to degree 7).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
_GL_X = (_GL_X + 1) / 2
_GL_W = _GL_W / 2


def _hermite_1d(xi: np.ndarray, h: float, deriv: int) -> np.ndarray:
    """The four 1D cubic Hermite functions (value a, slope a, value b, slope b), shape (N, 4).

    ``deriv`` is the order of the derivative with respect to the global coordinate; slopes are
    per unit global coordinate, hence the factors ``h`` (element size).
    """
    x = np.asarray(xi, dtype=float)
    out = np.empty(x.shape + (4,))
    if deriv == 0:
        x2 = x * x
        x3 = x2 * x
        out[..., 0] = 1 - 3 * x2 + 2 * x3
        out[..., 1] = h * (x - 2 * x2 + x3)
        out[..., 2] = 3 * x2 - 2 * x3
        out[..., 3] = h * (x3 - x2)
    elif deriv == 1:
        x2 = x * x
        out[..., 0] = (6 * x2 - 6 * x) / h
        out[..., 1] = 1 - 4 * x + 3 * x2
        out[..., 2] = (6 * x - 6 * x2) / h
        out[..., 3] = 3 * x2 - 2 * x
    elif deriv == 2:
        out[..., 0] = (12 * x - 6) / h**2
        out[..., 1] = (6 * x - 4) / h
        out[..., 2] = (6 - 12 * x) / h**2
        out[..., 3] = (6 * x - 2) / h
    else:
        raise ValueError("derivative order must be 0, 1 or 2")
    return out


# Local layout of the 16 DOFs of an element: index im * 4 + it, with im = 2 a + dm (mu node a,
# mu-derivative dm) and it = 2 b + dt (theta node b, theta-derivative dt), so that basis values are
# the outer product of the 1D functions.
_IM, _IT = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
_A, _DM = (_IM // 2).ravel(), (_IM % 2).ravel()
_B, _DT = (_IT // 2).ravel(), (_IT % 2).ravel()
_K = _DM + 2 * _DT


@dataclass(frozen=True)
class HermiteMesh:
    """Element layout of one lambda field; ``n_params`` reduced parameters."""

    n_mu: int = 4
    n_theta: int = 4
    mu_max: float = np.radians(110.0)
    constraint: np.ndarray = field(init=False, repr=False, compare=False)
    elem_cols: np.ndarray = field(init=False, repr=False, compare=False)  # (n_elements, 16) full DOFs

    def __post_init__(self) -> None:
        if self.n_mu < 1 or self.n_theta < 2:
            raise ValueError("need at least 1 element along mu and 2 around theta")
        object.__setattr__(self, "constraint", self._apex_constraint())
        e_mu, e_th = np.divmod(np.arange(self.n_mu * self.n_theta), self.n_theta)
        cols = ((e_mu[:, None] + _A) * self.n_theta + (e_th[:, None] + _B) % self.n_theta) * 4 + _K
        object.__setattr__(self, "elem_cols", cols)

    @property
    def h_mu(self) -> float:
        return self.mu_max / self.n_mu

    @property
    def h_theta(self) -> float:
        return 2 * np.pi / self.n_theta

    @property
    def n_full(self) -> int:
        return (self.n_mu + 1) * self.n_theta * 4

    @property
    def n_params(self) -> int:
        return self.constraint.shape[1]

    def dof(self, i_mu: np.ndarray, j_theta: np.ndarray, k: int) -> np.ndarray:
        """Index of DOF ``k`` (0 f, 1 f_mu, 2 f_theta, 3 f_mu_theta) of node (i_mu, j_theta)."""
        return ((i_mu * self.n_theta) + (j_theta % self.n_theta)) * 4 + k

    def _apex_constraint(self) -> np.ndarray:
        c = np.zeros((self.n_full, 3 + (self.n_full - 4 * self.n_theta)))
        th = np.arange(self.n_theta) * self.h_theta
        j = np.arange(self.n_theta)
        i0 = np.zeros_like(j)
        c[self.dof(i0, j, 0), 0] = 1.0
        c[self.dof(i0, j, 1), 1] = np.cos(th)
        c[self.dof(i0, j, 1), 2] = np.sin(th)
        c[self.dof(i0, j, 3), 1] = -np.sin(th)
        c[self.dof(i0, j, 3), 2] = np.cos(th)
        rest = np.arange(4 * self.n_theta, self.n_full)
        c[rest, 3 + np.arange(rest.size)] = 1.0
        return c

    def _locate(self, mu: np.ndarray, theta: np.ndarray):
        """Element-local coordinates and the index of each point's element (its 16 full-DOF
        columns: ``elem_cols[element]``)."""
        mu = np.clip(np.asarray(mu, dtype=float).ravel(), 0.0, self.mu_max)
        theta = np.mod(np.asarray(theta, dtype=float).ravel(), 2 * np.pi)
        e_mu = np.minimum((mu / self.h_mu).astype(int), self.n_mu - 1)
        e_th = np.minimum((theta / self.h_theta).astype(int), self.n_theta - 1)
        xi = mu / self.h_mu - e_mu
        eta = theta / self.h_theta - e_th
        return xi, eta, e_mu * self.n_theta + e_th

    def _products(self, xi, eta, d_mu, d_theta) -> np.ndarray:
        bm = _hermite_1d(xi, self.h_mu, d_mu)
        bt = _hermite_1d(eta, self.h_theta, d_theta)
        return (bm[:, :, None] * bt[:, None, :]).reshape(-1, 16)

    def basis(self, mu: np.ndarray, theta: np.ndarray, d_mu: int = 0, d_theta: int = 0) -> np.ndarray:
        """Dense matrix (N, n_params): row n gives d^(d_mu+d_theta) lambda at (mu[n], theta[n])."""
        xi, eta, elem = self._locate(mu, theta)
        vals = self._products(xi, eta, d_mu, d_theta)
        full = np.zeros((xi.size, self.n_full))
        np.put_along_axis(full, self.elem_cols[elem], vals, axis=1)
        return full @ self.constraint

    def evaluate(self, x: np.ndarray, mu: np.ndarray, theta: np.ndarray,
                 derivs: tuple[tuple[int, int], ...] = ((0, 0),),
                 field: np.ndarray | None = None) -> list[np.ndarray]:
        """Field values/derivatives at points for parameters ``x`` (no basis matrix is formed).

        ``x`` is one field's parameters, or ``(n_fields, n_params)`` with ``field`` giving each
        point's field (several surfaces evaluated in one pass).
        """
        xi, eta, elem = self._locate(mu, theta)
        # each element's 16 coefficients gathered once, then one 16-row per point
        # (np.take of whole rows: the same values as fancy indexing, several times faster)
        if field is None:
            coef = np.take((self.constraint @ x)[self.elem_cols], elem, axis=0)
        else:
            per_elem = (np.asarray(x) @ self.constraint.T)[:, self.elem_cols].reshape(-1, 16)
            coef = np.take(per_elem, np.asarray(field) * len(self.elem_cols) + elem, axis=0)
        coef = coef.reshape(-1, 4, 4)  # (N, im, it)
        cache_m: dict[int, np.ndarray] = {}  # mu-contracted coefficients per mu derivative
        cache_t: dict[int, np.ndarray] = {}
        out = []
        for dm, dt in derivs:
            if dm not in cache_m:
                cache_m[dm] = np.einsum("ni,nij->nj", _hermite_1d(xi, self.h_mu, dm), coef)
            if dt not in cache_t:
                cache_t[dt] = _hermite_1d(eta, self.h_theta, dt)
            out.append(np.einsum("nj,nj->n", cache_m[dm], cache_t[dt]))
        return out

    def along_mu(self, x: np.ndarray, theta: np.ndarray, field: np.ndarray | None = None):
        """``lam(mu)``: the field at fixed ``theta`` (one per point) as a function of each point's
        mu, the same values as :meth:`evaluate` with the theta parts computed once (the base-ring
        bisection evaluates the same thetas 20-40 times)."""
        theta = np.mod(np.asarray(theta, dtype=float).ravel(), 2 * np.pi)
        e_th = np.minimum((theta / self.h_theta).astype(int), self.n_theta - 1)
        ht = _hermite_1d(theta / self.h_theta - e_th, self.h_theta, 0)
        if field is None:
            per_elem, row = (self.constraint @ x)[self.elem_cols], e_th
        else:
            per_elem = (np.asarray(x) @ self.constraint.T)[:, self.elem_cols].reshape(-1, 16)
            row = np.asarray(field) * len(self.elem_cols) + e_th

        def lam(mu: np.ndarray) -> np.ndarray:
            mu = np.clip(np.asarray(mu, dtype=float).ravel(), 0.0, self.mu_max)
            e_mu = np.minimum((mu / self.h_mu).astype(int), self.n_mu - 1)
            coef = np.take(per_elem, row + e_mu * self.n_theta, axis=0).reshape(-1, 4, 4)
            cm = np.einsum("ni,nij->nj", _hermite_1d(mu / self.h_mu - e_mu, self.h_mu, 0), coef)
            return np.einsum("nj,nj->n", cm, ht)

        return lam

    def smoothing(self, w_first: float = 0.0, w_second: float = 1.0) -> np.ndarray:
        """Sobolev penalty matrix (n_params, n_params) over the parametric domain.

        ``w_first * (l_mu^2 + l_th^2) + w_second * (l_mumu^2 + 2 l_muth^2 + l_thth^2)``, integrated
        with the area weight ``sin(mu)`` (the pole shrinks theta circles) plus a floor of 0.1 so the
        apical elements are not left unpenalised.
        """
        qm, qt = np.meshgrid(_GL_X, _GL_X, indexing="ij")
        wq = np.outer(_GL_W, _GL_W).ravel()
        em, et = np.meshgrid(np.arange(self.n_mu), np.arange(self.n_theta), indexing="ij")
        mu = ((em.ravel()[:, None] + qm.ravel()[None]) * self.h_mu).ravel()
        th = ((et.ravel()[:, None] + qt.ravel()[None]) * self.h_theta).ravel()
        w = np.tile(wq, em.size) * self.h_mu * self.h_theta * (np.sin(mu) + 0.1)
        s = np.zeros((self.n_params, self.n_params))
        terms = []
        if w_first:
            terms += [(1, 0, w_first), (0, 1, w_first)]
        if w_second:
            terms += [(2, 0, w_second), (1, 1, 2 * w_second), (0, 2, w_second)]
        for dm, dt, k in terms:
            b = self.basis(mu, th, dm, dt)
            s += k * (b * w[:, None]).T @ b
        return s
