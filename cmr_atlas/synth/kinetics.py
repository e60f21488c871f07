"""Contrast kinetics for synthetic first-pass perfusion: arterial input and tissue curves.

Tissue curves: the distributed-parameter model (capillary plug flow with an axial concentration
gradient exchanging with the interstitium alongside it; Sangren & Sheppard 1953, Larson et al.
1987, :func:`distributed_parameter_curve`), or the two-compartment exchange model (2CXM; Sourbron &
Buckley, MRM 2011, :func:`tissue_curve`).  Neither is the Fermi model the estimator fits, and the
distributed one is not the 2CXM its second estimator fits, so each estimator's model error shows
up in the figures as it would on real data.  Times in seconds here (kinetic
convention); concentrations in mmol/l.

AIF: a gamma variate first pass plus a delayed, broader recirculation pass and a slowly rising
extravasation plateau, scaled so that the first-pass peak of blood concentration matches the
subject's draw (Kellman et al., JCMR 2017: 3.5 +- 1.2 mmol/l at stress, 4.4 +- 1.2 at rest for
0.05 mmol/kg).  Shape parameters follow published simulators (alpha about 3, beta about 1-1.5 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import i0e

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


def distributed_parameter_curve(t_s: np.ndarray, c_plasma_mmol_l: np.ndarray, plasma_flow_ml_min_g: float,
                                ps_ml_min_g: float, vp: float, ve: float, dt_s: float = 0.05) -> np.ndarray:
    """Tissue concentration (mmol/l) of the distributed-parameter model for the plasma input
    ``c_plasma_mmol_l`` sampled on the uniform grid ``t_s`` (0 before ``t_s[0]``).

    Plasma flows through the capillary as a plug (transit ``Tc = vp / Fp``) and exchanges with the
    interstitium beside each point of it (no axial diffusion; Sangren & Sheppard, Bull Math
    Biophys 1953; Larson, Markham & Raichle, JCBFM 1987; Sourbron & Buckley, NMR Biomed 2013):
    ``vp dCp/dt + Fp dCp/dx = PS (Ce - Cp)``, ``ve dCe/dt = PS (Cp - Ce)``, x in [0, 1].  Along
    the plug's characteristic, the venous outflow for a unit impulse is (Laplace transform
    ``exp(-s Tc) exp(-a s / (s + k))``, a = PS / Fp, k = PS / ve)

        h(t) = exp(-a) [delta(t - Tc) + exp(-k u) sqrt(a k / u) I1(2 sqrt(a k u))],  u = t - Tc > 0:

    a fraction exp(-a) = 1 - E passes unextracted, the extracted part returns with the Bessel
    kernel.  The tissue holds what came in and has not left: ``Ct = Fp int (Ca - Cout)``; h is
    integrated over each time step in closed form (:func:`outflow_distribution`), so the discrete
    scheme conserves the agent exactly and needs no care at h's jump at Tc.  Limits:
    PS -> 0 gives the intravascular plug ``Fp int_{t-Tc}^t Ca``; PS -> infinity a plug through
    vp + ve (transit (vp + ve) / Fp).  Flows per gram of tissue (density 1.05 g/ml), rates in /s.
    """
    t = np.asarray(t_s, float)
    fine = np.arange(t[0], t[-1] + dt_s, dt_s)
    ca = np.interp(fine, t, np.asarray(c_plasma_mmol_l, float))
    fp = plasma_flow_ml_min_g * TISSUE_DENSITY_G_PER_ML / 60.0
    ps = ps_ml_min_g * TISSUE_DENSITY_G_PER_ML / 60.0
    # the outflow's share in each time step, exactly: the steps' masses sum to what has left
    edges = outflow_distribution(dt_s * (np.arange(len(fine)) + 0.5), ps / fp, ps / ve)
    share = np.diff(edges, prepend=0.0)
    arriving = np.interp(fine - vp / fp, fine, ca, left=0.0)  # the input one capillary transit later
    n = 2 * len(fine)
    outflow = np.fft.irfft(np.fft.rfft(arriving, n) * np.fft.rfft(share, n), n)[: len(fine)]
    net_in = ca - outflow
    ct = fp * np.concatenate([[0.0], np.cumsum(0.5 * (net_in[1:] + net_in[:-1])) * dt_s])
    return np.interp(t, fine, ct)


def outflow_distribution(u_s: np.ndarray, a: float, k_per_s: float) -> np.ndarray:
    """Share of a unit impulse that has left the distributed-parameter capillary by ``u_s`` after
    its transit: the integral of h (see :func:`distributed_parameter_curve`) from Tc to Tc + u.

    h is a compound Poisson law (a molecule enters the interstitium Poisson(a) times and stays an
    exponential time of rate k each), so the share is ``P(M >= N)``, N ~ Poisson(a), M ~
    Poisson(k u): ``ncx2.cdf(2 k u; 2, 2 a) + exp(-a - k u) I0(2 sqrt(a k u))`` (the noncentral
    chi-square's Poisson mixture; ``exp(-a)`` at u = 0, the unextracted fraction 1 - E)."""
    from scipy.stats import ncx2

    ku = k_per_s * np.asarray(u_s, float)
    passed = ncx2.cdf(2.0 * ku, 2, 2.0 * a) if a > 0 else 1.0 - np.exp(-ku)
    return passed + np.exp(-(np.sqrt(a) - np.sqrt(ku)) ** 2) * i0e(2.0 * np.sqrt(a * ku))


def distributed_tissue_curve(t_s: np.ndarray, c_plasma: np.ndarray, params: ExchangeParams, hematocrit: float,
                             dt_s: float = 0.05) -> np.ndarray:
    """:func:`distributed_parameter_curve` with the 2CXM's parameters (blood flow per gram and the
    hematocrit give the plasma flow), so either model takes the same draws."""
    return distributed_parameter_curve(t_s, c_plasma, params.mbf_ml_min_g * (1.0 - hematocrit), params.ps_ml_min_g,
                                       params.vp, params.ve, dt_s)


TissueModel = Callable[[np.ndarray, np.ndarray, ExchangeParams, float], np.ndarray]
TISSUE_MODELS: dict[str, TissueModel] = {"distributed": distributed_tissue_curve, "2cxm": tissue_curve}


def delayed(t_s: np.ndarray, curve: np.ndarray, delay_s: float) -> np.ndarray:
    """``curve`` (sampled on ``t_s``) arriving ``delay_s`` later: the transit from the LV cavity,
    where the AIF is measured, to the myocardium, or from the RV to the LV."""
    t = np.asarray(t_s, float)
    return np.interp(t - delay_s, t, np.asarray(curve, float), left=float(curve[0]))
