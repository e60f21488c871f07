import logging
from pathlib import Path

from cmr_atlas.report.page import build_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
index = build_report(Path(snakemake.output[0]).parent.parent, models_dir=snakemake.params.models_dir)
print(f"report: {index.resolve()}")
