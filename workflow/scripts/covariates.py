import logging
from pathlib import Path

from cmr_atlas.stats.covariates import write_covariates

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
table = snakemake.input.table  # [] when no covariates table is configured
write_covariates(
    Path(snakemake.output.covariates).parent, table[0] if table else None, snakemake.input.exam_keys,
    snakemake.params.key_type, snakemake.params.key_column, snakemake.config["exam_id_key"],
    snakemake.input.exams,
)
