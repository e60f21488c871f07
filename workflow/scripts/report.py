import logging

from cmr_atlas.report.html import build_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
index = build_report(snakemake.params.results, models_dir=snakemake.params.models_dir)
print(f"report: {index.resolve()}")
