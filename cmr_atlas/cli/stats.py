"""``cmr-atlas stats``: risk-factor AUCs, DeLong auto vs manual, odds ratios, measure agreement.

Reads the atlas scores, the covariates (written by the covariates step) and optionally the
BSA-indexed measures (the cohort measures table); writes under ``--out``: stats/risk_factor_auc,
stats/delong, stats/odds_ratios, stats/measures_agreement and stats/oof_predictions (parquet).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cmr_atlas.core.config import default
from cmr_atlas.stats.risk_factors import stats_paths, write_stats


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", required=True, help="atlas/scores.parquet")
    p.add_argument("--covariates", required=True, help="covariates.parquet")
    p.add_argument("--covariates-extra", help="covariates_extra.parquet (extra columns, long form)")
    p.add_argument("--measures", help="measures.parquet, BSA-indexed (for auto vs manual agreement)")
    p.add_argument("--out", required=True, help="results folder (stats/ is written inside)")
    p.add_argument("--risk-factors", nargs="+", default=default("stats.risk_factors"),
                   help="binary covariate columns")
    p.add_argument("--n-pcs", type=int, default=default("stats.n_pcs"), help="PC scores used as predictors (k)")
    p.add_argument("--folds", type=int, default=default("stats.folds"), help="cross-validation folds")
    p.add_argument("--bootstrap", type=int, default=default("stats.bootstrap"),
                   help="bootstrap draws for the AUC CI (0 = none)")
    p.add_argument("--adjust-for", nargs="*", default=default("stats.adjust_for"),
                   help="adjustment covariates, e.g. age sex")
    p.add_argument("--seed", type=int, default=default("stats.seed"))


def run(args: argparse.Namespace) -> int:
    out = write_stats(args.scores, args.covariates, args.covariates_extra, args.measures, stats_paths(args.out),
                      risk_factors=args.risk_factors, n_pcs=args.n_pcs, folds=args.folds,
                      n_bootstrap=args.bootstrap, adjust_for=args.adjust_for or [], seed=args.seed)
    print(f"stats: {len(out.risk_factor_auc)} risk-factor models, {len(out.delong)} DeLong tests -> {Path(args.out) / 'stats'}")
    return 0
