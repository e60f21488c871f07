"""Check the atlas + stats path on synthetic shapes: do the AUCs land near the generator's effects?

For N synthetic subjects (the same subject and heart draws as ``cmr-atlas synth --seed S``, without
rendering images) the true ED/ES surfaces build the "manual" atlas; a copy with smooth per-exam
perturbations (a stand-in for automated-pipeline error, ``--auto-noise-mm``) builds the "auto"
atlas.  For each risk factor it prints

* oracle AUC: 10-fold CV logistic regression on the six target clinical indices the generator
  applied the risk-factor effects to (EDVi, sphericity, EF, RWT, conicity, LS): the association
  the generator was given, as far as a linear model can see it;
* manual and auto atlas AUCs on ``--pcs`` PCs (the config's stats.n_pcs) with bootstrap CIs, and DeLong p (auto vs manual).

The manual AUCs should be close to the oracle AUCs (shape carries the indices, plus the random
harmonics and pose that are noise for this purpose), and DeLong should mostly find no difference.

    PYTHONPATH=$PWD python benchmarks/stats_synth_check.py --n 300 --seed 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from cmr_atlas.cine.atlas import SURFACES, build_atlas
from cmr_atlas.core.config import default
from cmr_atlas.stats.auc import cv_auc
from cmr_atlas.stats.delong import delong_test
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import calibration as cal
from cmr_atlas.synth.mesa.cohort import SHAPE_GRID
from cmr_atlas.synth.subjects import sample_subjects

RISK_FACTORS = default("stats.risk_factors")  # the workflow's risk factors


def subject_shapes(seed: int, index: int) -> tuple[dict, np.ndarray]:
    ss = np.random.SeedSequence([int(seed), int(index)])
    rng_subject, rng_heart, *_ = (np.random.default_rng(s) for s in ss.spawn(6))
    subj = sample_subjects(rng_subject, 1, 0.0).iloc[0].to_dict()
    targets = {k[len("target_"):]: v for k, v in subj.items() if k.startswith("target_")}
    heart = an.make_heart(rng_heart, targets, subj["bsa_m2"], subj["height_cm"], subj["weight_kg"],
                          subj["heart_rate"])
    pts = [heart.surface_grid(0.0 if ph == "ED" else 1.0, surf, *SHAPE_GRID) for ph, surf in SURFACES]
    return subj, np.concatenate(pts)


def smooth_noise(rng: np.random.Generator, shape: np.ndarray, sd_mm: float) -> np.ndarray:
    """Low-order smooth displacement field (what a fitted model's error looks like) plus jitter."""
    c = shape - shape.mean(axis=0)
    scale = np.abs(c).max()
    basis = np.column_stack([np.ones(len(c)), c / scale, (c / scale) ** 2])
    coef = rng.normal(0, sd_mm, (basis.shape[1], 3)) / np.sqrt(basis.shape[1])
    return shape + basis @ coef + rng.normal(0, 0.3 * sd_mm, shape.shape)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--auto-noise-mm", type=float, default=1.5)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--pcs", type=int, default=default("stats.n_pcs"), help="config stats.n_pcs")
    a = ap.parse_args()
    t0 = time.time()
    subs, shapes = [], []
    for i in range(a.n):
        s, p = subject_shapes(a.seed, i)
        subs.append(s)
        shapes.append(p)
    subj = pd.DataFrame(subs)
    manual = np.stack(shapes)
    rng = np.random.default_rng(a.seed + 1)
    auto = np.stack([smooth_noise(rng, s, a.auto_noise_mm) for s in manual])
    t1 = time.time()
    atl = {src: build_atlas(x, src, n_components=a.pcs, scaling=default("atlas.scaling")) for src, x in (("manual", manual), ("auto", auto))}
    t2 = time.time()
    idx = subj[[f"target_{k}" for k in cal.INDEX_NAMES]].to_numpy(float)
    print(f"N = {a.n} subjects (seed {a.seed}); shapes {t1 - t0:.1f} s, atlases {t2 - t1:.1f} s; "
          f"manual atlas: {a.pcs} PCs explain {100 * atl['manual'].variance_ratio.sum():.1f} %")
    print(f"{'risk factor':18s} {'prev':>5s} {'oracle':>7s} {'manual (95% CI)':>20s} "
          f"{'auto (95% CI)':>20s} {'DeLong p':>9s}")
    folds, seed = default("stats.folds"), default("stats.seed")  # the workflow's settings
    for rf in RISK_FACTORS:
        y = subj[rf].to_numpy(float)
        o = cv_auc(idx, y, folds=folds, seed=seed, n_bootstrap=0)
        m = cv_auc(atl["manual"].scores, y, folds=folds, seed=seed, n_bootstrap=a.bootstrap)
        u = cv_auc(atl["auto"].scores, y, folds=folds, seed=seed, n_bootstrap=a.bootstrap)
        p = delong_test(y, m.oof, u.oof).p if not (np.isnan(m.auc) or np.isnan(u.auc)) else float("nan")
        fmt = lambda r: f"{r.auc:.3f} ({r.ci_low:.2f}-{r.ci_high:.2f})" if np.isfinite(r.auc) else r.note  # noqa: E731
        print(f"{rf:18s} {y.mean():5.2f} {o.auc:7.3f} {fmt(m):>20s} {fmt(u):>20s} {p:9.3f}")
    print(f"total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
