"""Prolate spheroidal coordinates of the LV model's local frame.

Local Cartesian frame (see :mod:`frame`): origin at the base (mitral-valve) centre, +z along the
long axis towards the apex, +x towards the septum.  With focal length ``d`` (foci at z = +-d):

    x = d sinh(lam) sin(mu) cos(theta)
    y = d sinh(lam) sin(mu) sin(theta)
    z = d cosh(lam) cos(mu)

so mu = 0 is the apical pole, mu = pi/2 the plane of the origin (the base), theta = 0 the septum.
"""

from __future__ import annotations

import numpy as np


def to_prolate(xyz: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lam, mu, theta) of local points ``(N, 3)``."""
    xyz = np.asarray(xyz, dtype=float)
    rho = np.hypot(xyz[:, 0], xyz[:, 1])
    r1 = np.hypot(rho, xyz[:, 2] + d)
    r2 = np.hypot(rho, xyz[:, 2] - d)
    lam = np.arccosh(np.maximum((r1 + r2) / (2 * d), 1.0))
    mu = np.arccos(np.clip((r1 - r2) / (2 * d), -1.0, 1.0))
    theta = np.mod(np.arctan2(xyz[:, 1], xyz[:, 0]), 2 * np.pi)
    return lam, mu, theta


def to_cartesian(lam: np.ndarray, mu: np.ndarray, theta: np.ndarray, d: float) -> np.ndarray:
    """Local points ``(N, 3)`` of prolate coordinates."""
    sl, cl = np.sinh(lam), np.cosh(lam)
    sm, cm = np.sin(mu), np.cos(mu)
    return d * np.stack([sl * sm * np.cos(theta), sl * sm * np.sin(theta), cl * cm], axis=-1)


def jacobian(lam: np.ndarray, mu: np.ndarray, theta: np.ndarray, d: float):
    """Partial derivatives (X_lam, X_mu, X_theta), each ``(N, 3)``."""
    sl, cl = np.sinh(lam), np.cosh(lam)
    sm, cm = np.sin(mu), np.cos(mu)
    ct, st = np.cos(theta), np.sin(theta)
    x_lam = d * np.stack([cl * sm * ct, cl * sm * st, sl * cm], axis=-1)
    x_mu = d * np.stack([sl * cm * ct, sl * cm * st, -cl * sm], axis=-1)
    x_th = d * np.stack([-sl * sm * st, sl * sm * ct, np.zeros_like(sl)], axis=-1)
    return x_lam, x_mu, x_th


def cartesian_and_jacobian(lam: np.ndarray, mu: np.ndarray, theta: np.ndarray, d: float):
    """:func:`to_cartesian` and :func:`jacobian` (the same values) with the sines and cosines
    computed once: the fit's projections need both at every iteration."""
    sl, cl = np.sinh(lam), np.cosh(lam)
    sm, cm = np.sin(mu), np.cos(mu)
    ct, st = np.cos(theta), np.sin(theta)
    sl_sm = sl * sm
    x = d * np.stack([sl_sm * ct, sl_sm * st, cl * cm], axis=-1)
    x_lam = d * np.stack([cl * sm * ct, cl * sm * st, sl * cm], axis=-1)
    x_mu = d * np.stack([sl * cm * ct, sl * cm * st, -cl * sm], axis=-1)
    x_th = d * np.stack([-sl * sm * st, sl_sm * ct, np.zeros_like(sl)], axis=-1)
    return x, x_lam, x_mu, x_th
