"""Snakemake script of rule report: cmr_atlas.report.page.build_report."""
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.report.page import build_report

log_to_file(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
build_report(snakemake.config["results_dir"], snakemake.output[0], models_dir=p.models_dir,  # noqa: F821
             review_max_exams=p.review_max_exams)
