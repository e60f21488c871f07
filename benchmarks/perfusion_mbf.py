"""Accuracy and speed of the MBF estimators (cmr_atlas.perfusion.mbf) on digital reference curves.

Reference curves: the generator's kinetics (gamma-variate AIF with recirculation, tissue on a
0.05 s grid with a bolus delay, sampled once per heartbeat; ``--tissue-model``: the
distributed-parameter model, the generator's default, or the 2CXM, the second estimator's own),
flows drawn like the clinical protocol's normal subjects (stress 2.25 +- 0.59, rest 1.08 +- 0.23 ml/min/g), heart rates 60-100
(rest) and 75-120 (stress), permeability-surface 1.0-2.5 ml/min/g, Gaussian noise on the tissue
curves at a per-pixel-like and a per-segment-like level.  Prints bias, SD and the share within the
OSIPI-style tolerance |error| <= 0.1 + 10 % per model and condition, and the fitting time.

    python benchmarks/perfusion_mbf.py [--n 300] [--seed 7] [--tissue-model distributed|2cxm]
    python benchmarks/perfusion_mbf.py --extraction   # Fermi and 2CXM against E x MBF, PS x 0.5-10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cmr_atlas.perfusion import mbf as M
from cmr_atlas.synth import kinetics as K

HCT = 0.42
CONDITIONS = {"rest": ((1.08, 0.23), (60, 100), 4.4), "stress": ((2.25, 0.59), (75, 120), 3.5)}


def curves(rng: np.random.Generator, n: int, condition: str, noise_mM: float, tissue_model: str = "distributed"):
    (mu, sd), (hr_lo, hr_hi), peak = CONDITIONS[condition]
    truth = np.clip(rng.normal(mu, sd, n), 0.3, 5.0)
    out = []
    for m in truth:
        dt = 60.0 / rng.uniform(hr_lo, hr_hi)
        fine = np.arange(0.0, 60 * dt + 5.0, 0.05)
        aif_fine = K.aif_blood(fine, max(rng.normal(peak, 1.2), 1.0))
        cp = np.interp(fine - rng.uniform(0.0, 2.5), fine, K.plasma_from_blood(aif_fine, HCT), left=0.0)
        params = K.ExchangeParams(m, ps_ml_min_g=rng.uniform(1.0, 2.5))
        t = np.arange(60) * dt
        tissue = np.interp(t, fine, K.TISSUE_MODELS[tissue_model](fine, cp, params, HCT)) + rng.normal(0, noise_mM, 60)
        out.append((np.interp(t, fine, aif_fine), tissue, dt))
    return truth, out


def extraction_table(tissue_model: str) -> None:
    """Noise-free curves of the generator's kinetics at its rest and stress parameters, PS from a
    half to ten times the generator's: the Fermi fit against the flow and the extracted flow
    ``E x MBF`` (``E = 1 - exp(-PS / Fp)``, Fp the plasma flow)."""
    print(f"{'condition':9} {'MBF':>5} {'PS':>5} {'E':>5} {'E x MBF':>8} {'fermi':>6} {'2cxm':>6}")
    for cond, mbf, ps, vp, dt, beta in (("rest", 1.1, 1.2, 0.045, 0.85, 1.35), ("stress", 2.3, 1.6, 0.06, 0.65, 1.1)):
        fine = np.arange(0, 60 * dt + 5, 0.05)
        aif = K.aif_blood(fine, 4.0, K.AifShape(arrival_s=8.0, beta_s=beta))
        cp = np.interp(fine - 1.0, fine, K.plasma_from_blood(aif, HCT), left=0.0)
        t = np.arange(60) * dt
        for scale in (0.5, 1.0, 2.0, 10.0):
            params = K.ExchangeParams(mbf, ps * scale, vp, 0.2)
            tissue = np.interp(t, fine, K.TISSUE_MODELS[tissue_model](fine, cp, params, HCT))
            e = 1 - np.exp(-ps * scale / (mbf * (1 - HCT)))
            got = [M.estimate_mbf(np.interp(t, fine, aif), tissue, dt, HCT, model=m) for m in M.MODELS]
            print(f"{cond:9} {mbf:5.2f} {ps * scale:5.2f} {e:5.2f} {e * mbf:8.2f} {got[0]:6.2f} {got[1]:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="curves per condition and noise level")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--extraction", action="store_true", help="only the Fermi-vs-extraction table")
    ap.add_argument("--tissue-model", default="distributed", choices=sorted(K.TISSUE_MODELS))
    args = ap.parse_args()
    if args.extraction:
        extraction_table(args.tissue_model)
        return
    rng = np.random.default_rng(args.seed)
    print(f"{'model':6} {'condition':9} {'noise mM':>8} {'truth':>6} {'bias':>7} {'SD':>6} {'in tol':>7} {'ms/curve':>8}")
    for noise in (0.01, 0.05):
        for condition in CONDITIONS:
            truth, data = curves(rng, args.n, condition, noise, args.tissue_model)
            for model in M.MODELS:
                t0 = time.perf_counter()
                got = np.array([M.estimate_mbf(a, c, dt, HCT, model=model) for a, c, dt in data])
                ms = 1000 * (time.perf_counter() - t0) / len(data)
                err = got - truth
                ok = np.mean(np.abs(err) <= 0.1 + 0.1 * truth)
                print(f"{model:6} {condition:9} {noise:8.2f} {truth.mean():6.2f} {err.mean():+7.3f} {err.std():6.3f} "
                      f"{100 * ok:6.1f}% {ms:8.1f}")
    # batched speed: one AIF, a slice's worth of pixels
    aif, tissue, dt = curves(rng, 1, "stress", 0.0, args.tissue_model)[1][0]
    pixels = tissue[None] + rng.normal(0, 0.05, (1500, tissue.size))
    for model in M.MODELS:
        t0 = time.perf_counter()
        M.estimate_mbf(aif, pixels, dt, HCT, model=model)
        print(f"{model}: 1,500 pixel curves in one call: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
