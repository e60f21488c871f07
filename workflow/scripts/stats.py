from cmr_atlas.core.logs import log_to_file

from cmr_atlas.stats.risk_factors import write_stats

log_to_file(snakemake.log[0])
out, cfg = snakemake.output, snakemake.params.stats  # cfg: the validated config's stats block, defaults filled
write_stats(
    snakemake.input.scores, snakemake.input.covariates, snakemake.input.extra, snakemake.input.measures,
    {"risk_factor_auc": out.auc, "delong": out.delong, "odds_ratios": out.odds_ratios,
     "measures_agreement": out.agreement, "oof_predictions": out.oof},
    risk_factors=cfg["risk_factors"], n_pcs=cfg["n_pcs"], folds=cfg["folds"], n_bootstrap=cfg["bootstrap"],
    adjust_for=cfg["adjust_for"], seed=cfg["seed"],
)
