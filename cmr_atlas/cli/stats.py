"""``cmr-atlas stats``: risk-factor AUCs, DeLong auto vs manual, odds ratios, measure agreement.

Reads the atlas scores, the covariates (written by the covariates step) and optionally the
measures; writes under ``--out``: stats/risk_factor_auc, stats/delong, stats/odds_ratios,
stats/measures_agreement and stats/oof_predictions (parquet).  Indexed measures (edvi, esvi, lvmi)
missing from the measures table are filled from the covariates' BSA before the agreement.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from cmr_atlas.stats.covariates import COVARIATES, index_by_bsa, load_covariates_wide
from cmr_atlas.stats.risk_factors import STATS_TABLES, run_stats
from cmr_atlas.core.tables import write_table

log = logging.getLogger(__name__)

DEFAULT_RISK_FACTORS = ["hypertension", "diabetes", "current_smoker", "high_cholesterol", "calcium_positive"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", required=True, help="atlas/scores.parquet")
    p.add_argument("--covariates", required=True, help="covariates.parquet")
    p.add_argument("--covariates-extra", help="covariates_extra.parquet (extra columns, long form)")
    p.add_argument("--measures", help="measures.parquet (for auto vs manual agreement)")
    p.add_argument("--out", required=True, help="results folder (stats/ is written inside)")
    p.add_argument("--risk-factors", nargs="+", default=DEFAULT_RISK_FACTORS, help="binary covariate columns")
    p.add_argument("--n-pcs", type=int, default=20, help="PC scores used as predictors (k)")
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws for the AUC CI (0 = none)")
    p.add_argument("--adjust-for", nargs="*", default=[], help="adjustment covariates, e.g. age sex")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    scores = pd.read_parquet(args.scores)
    cov = load_covariates_wide(args.covariates, args.covariates_extra) if Path(args.covariates).is_file() \
        else COVARIATES.empty()
    measures = None
    if args.measures and Path(args.measures).is_file():
        measures = pd.read_parquet(args.measures)
        if len(measures) and "bsa_m2" in cov:
            filled = index_by_bsa(measures, cov)
            for c in ("edvi", "esvi", "lvmi"):
                if c in measures:
                    measures[c] = measures[c].where(measures[c].notna(), filled[c])
                elif c in filled:
                    measures[c] = filled[c]
    out = run_stats(scores, cov, list(args.risk_factors), n_pcs=args.n_pcs, folds=args.folds,
                    n_bootstrap=args.bootstrap, adjust_for=list(args.adjust_for or []), seed=args.seed,
                    measures=measures)
    frames = dict(zip(STATS_TABLES, (out.risk_factor_auc, out.delong, out.odds_ratios,
                                     out.measures_agreement, out.oof_predictions)))
    for schema, df in frames.items():
        write_table(df if len(df) else schema.empty(), Path(args.out) / f"{schema.name}.parquet", schema)
    for r in out.risk_factor_auc.itertuples():
        log.info("stats: %-18s %-6s AUC %s (n %d, %d positive)%s", r.risk_factor, r.source,
                 f"{r.auc:.3f}" if pd.notna(r.auc) else "n/a", r.n, r.n_positive,
                 f" [{r.note}]" if r.note else "")
    print(f"stats: {len(out.risk_factor_auc)} risk-factor models, {len(out.delong)} DeLong tests -> {Path(args.out) / 'stats'}")
    return 0
