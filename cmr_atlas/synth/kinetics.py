"""Contrast kinetics for synthetic first-pass perfusion: arterial input and tissue curves.

The tissue curves are generated with the two-compartment exchange model (2CXM; Sourbron & Buckley,
MRM 2011), deliberately NOT the Fermi model the perfusion estimator fits, so that the estimator's
model error shows up in the figures as it would on real data.  Times in seconds here (kinetic
convention); concentrations in mmol/l.

AIF: a gamma variate first pass plus a delayed, broader recirculation pass and a slowly rising
extravasation plateau, scaled so that the first-pass peak of blood concentration matches the
subject's draw (Kellman et al., JCMR 2017: 3.5 +- 1.2 mmol/l at stress, 4.4 +- 1.2 at rest for
0.05 mmol/kg).  Shape parameters follow published simulators (alpha about 3, beta about 1-1.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TISSUE_DENSITY_G_PER_ML = 1.05


@dataclass(frozen=True)
class AifShape:
    """Gamma-variate first pass with recirculation; all times in s."""

    arrival_s: float = 8.0
    alpha: float = 3.0
    beta_s: float = 1.2
    recirculation_delay_s: float = 9.0
    recirculation_fraction: float = 0.25  # area of the second pass / first pass
    recirculation_width: float = 2.0  # second-pass beta relative to the first
    plateau_fraction: float = 0.06  # late steady level relative to the first-pass peak


def gamma_variate(t_s: np.ndarray, arrival_s: float, alpha: float, beta_s: float) -> np.ndarray:
    """Unit-peak gamma variate ``((t-t0)/(alpha beta))^alpha exp(alpha - (t-t0)/beta)``, 0 before t0."""
    x = np.clip((np.asarray(t_s, float) - arrival_s) / beta_s, 0.0, None)
    with np.errstate(divide="ignore"):
        out = np.where(x > 0, np.exp(alpha * np.log(np.maximum(x, 1e-300) / alpha) + alpha - x), 0.0)
    return out


def aif_blood(t_s: np.ndarray, peak_mmol_l: float, shape: AifShape = AifShape()) -> np.ndarray:
    """Whole-blood arterial concentration with first-pass peak ``peak_mmol_l``."""
    t = np.asarray(t_s, float)
    first = gamma_variate(t, shape.arrival_s, shape.alpha, shape.beta_s)
    b2 = shape.beta_s * shape.recirculation_width
    second = gamma_variate(t, shape.arrival_s + shape.recirculation_delay_s, shape.alpha, b2)
    # equal-shape gamma variates: area ratio = width ratio, so scale the second pass's height
    second *= shape.recirculation_fraction / shape.recirculation_width
    t_peak = shape.arrival_s + shape.alpha * shape.beta_s
    # extravasation leaves a slowly rising plateau after the first pass
    plateau = shape.plateau_fraction * np.clip(1.0 - np.exp(-(t - t_peak) / 5.0), 0.0, None)
    curve = first + second + plateau
    top = curve.max()
    return peak_mmol_l * curve / top if top > 0 else curve


def plasma_from_blood(c_blood, hematocrit: float):
    """Plasma concentration from whole blood: ``Cp = Cb / (1 - Hct)`` (the agent stays out of cells)."""
    if not 0.0 <= hematocrit < 1.0:
        raise ValueError(f"hematocrit must be in [0, 1), got {hematocrit}")
    return np.asarray(c_blood, float) / (1.0 - hematocrit)


@dataclass(frozen=True)
class ExchangeParams:
    """2CXM tissue parameters per ml of tissue.

    ``mbf_ml_min_g``: myocardial blood flow; ``ps_ml_min_g``: permeability-surface product;
    ``vp``: plasma volume fraction; ``ve``: interstitial volume fraction.
    """

    mbf_ml_min_g: float
    ps_ml_min_g: float = 1.2
    vp: float = 0.05
    ve: float = 0.20

    def plasma_flow_per_s(self, hematocrit: float) -> float:
        """Fp in ml plasma per ml tissue per s from blood flow per gram."""
        return self.mbf_ml_min_g * TISSUE_DENSITY_G_PER_ML * (1.0 - hematocrit) / 60.0


def exchange_impulse_response(t_s: np.ndarray, params: ExchangeParams, hematocrit: float) -> np.ndarray:
    """Tissue impulse response of the 2CXM (per unit plasma input), from its 2x2 system matrix.

    State ``(Cp, Ce)``: ``vp dCp/dt = Fp (Ca - Cp) - PS (Cp - Ce)``, ``ve dCe/dt = PS (Cp - Ce)``,
    tissue ``Ct = vp Cp + ve Ce``.  Solved by eigen-decomposition (real, negative eigenvalues),
    so no closed-form sign conventions can go wrong.
    """
    fp = params.plasma_flow_per_s(hematocrit)
    ps = params.ps_ml_min_g * TISSUE_DENSITY_G_PER_ML / 60.0
    vp, ve = params.vp, params.ve
    m = np.array([[-(fp + ps) / vp, ps / vp], [ps / ve, -ps / ve]])
    b = np.array([fp / vp, 0.0])
    w, v = np.linalg.eig(m)
    coef = np.linalg.solve(v, b)
    t = np.asarray(t_s, float)
    states = (v[None, :, :] * (coef[None, None, :] * np.exp(np.outer(t, w))[:, None, :])).sum(-1).real
    return states @ np.array([vp, ve])


def tissue_curve(t_s: np.ndarray, c_plasma: np.ndarray, params: ExchangeParams, hematocrit: float,
                 dt_s: float = 0.05) -> np.ndarray:
    """Tissue concentration for the plasma input ``c_plasma`` sampled on the uniform grid ``t_s``.

    The input is interpolated onto a fine grid (``dt_s``, well below the fastest exchange time
    constant, ``vp / (Fp + PS)``) and convolved with the trapezoidal rule, then sampled back.
    """
    t = np.asarray(t_s, float)
    fine = np.arange(t[0], t[-1] + dt_s, dt_s)
    ca = np.interp(fine, t, np.asarray(c_plasma, float))
    h = exchange_impulse_response(fine - fine[0], params, hematocrit)
    n = 2 * len(fine)
    full = np.fft.irfft(np.fft.rfft(ca, n) * np.fft.rfft(h, n), n)
    ct = full[: len(fine)] - 0.5 * (ca[0] * h + ca * h[0])
    return np.interp(t, fine, ct * dt_s)


def delayed(t_s: np.ndarray, curve: np.ndarray, delay_s: float) -> np.ndarray:
    """``curve`` (sampled on ``t_s``) arriving ``delay_s`` later: the transit from the LV cavity,
    where the AIF is measured, to the myocardium, or from the RV to the LV."""
    t = np.asarray(t_s, float)
    return np.interp(t - delay_s, t, np.asarray(curve, float), left=float(curve[0]))
