import logging

from cmr_atlas.covariates import write_covariates

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
write_covariates(
    snakemake.params.out, snakemake.params.table or None, snakemake.input.exam_keys,
    snakemake.params.key_type, snakemake.params.key_column, snakemake.config["exam_id_key"],
    snakemake.input.exams,
)
