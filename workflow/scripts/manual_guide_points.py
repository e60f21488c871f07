import logging
from pathlib import Path

import pandas as pd

from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.cli.guidepoints import build_manual
from cmr_atlas.core.tables import write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
if snakemake.params.annotations:
    gp = build_manual(Path(snakemake.params.annotations), pd.read_parquet(snakemake.input.slices),
                      pd.read_parquet(snakemake.input.exam_keys), snakemake.config["exam_id_key"],
                      snakemake.params.observer)
else:
    logging.info("no manual annotations configured: the manual path is empty")
    gp = GUIDE_POINTS.empty()
write_table(gp, snakemake.output[0], GUIDE_POINTS)
