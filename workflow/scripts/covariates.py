from cmr_atlas.core.logs import log_to_file

from cmr_atlas.stats.covariates import write_covariates

log_to_file(snakemake.log[0])
out, table = snakemake.output, snakemake.input.table  # table: [] when no covariates table is configured
write_covariates(
    {"covariates": out.covariates, "extra": out.extra, "missing": out.missing}, table[0] if table else None,
    snakemake.input.exam_keys, snakemake.params.key_type, snakemake.params.key_column,
    snakemake.config["exam_id_key"], snakemake.input.exams,
)
