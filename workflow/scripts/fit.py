"""Snakemake script: fit the LV model for one shard (thin wrapper over cmr_atlas.cli.fit)."""

import logging
from pathlib import Path

from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.cli.fit import fit_all
from cmr_atlas.cine.lvmodel.outputs import TABLES
from cmr_atlas.core.tables import read_table, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
gp = read_table(snakemake.input.guide_points, GUIDE_POINTS)  # noqa: F821
slices = read_table(snakemake.input.slices)  # noqa: F821
vtp = snakemake.params.vtp_dir  # noqa: F821
tables = fit_all(gp, slices, breath_hold=snakemake.params.breath_hold,  # noqa: F821
                 vtp_dir=Path(vtp) if vtp else None,
                 shift_reference=snakemake.params.shift_reference)  # noqa: F821
for name, df in tables.items():
    write_table(df, snakemake.output[name], TABLES[name])  # noqa: F821
