import argparse
import logging
from pathlib import Path

from cmr_atlas.cli.stats import DEFAULT_RISK_FACTORS, run

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
cfg = snakemake.params.stats
run(argparse.Namespace(
    scores=snakemake.input.scores, covariates=snakemake.input.covariates,
    covariates_extra=snakemake.input.extra, measures=snakemake.input.measures,
    out=str(Path(snakemake.output.auc).parent.parent),  # RESULTS; the CLI writes stats/ inside
    risk_factors=cfg.get("risk_factors", DEFAULT_RISK_FACTORS), n_pcs=cfg.get("n_pcs", 20),
    folds=cfg.get("folds", 10), bootstrap=cfg.get("bootstrap", 1000), adjust_for=cfg.get("adjust_for", []),
    seed=cfg.get("seed", 0),
))
