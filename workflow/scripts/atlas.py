import argparse
import logging
from pathlib import Path

from cmr_atlas.cli.atlas import run

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
run(argparse.Namespace(
    shapes=snakemake.input.shapes, exams=snakemake.input.exams,
    out=str(Path(snakemake.output.scores).parent.parent),  # RESULTS; the CLI writes atlas/ inside
    n_components=snakemake.params.n_components, scaling=snakemake.params.scaling,
    modes_to_render=3, render_backend="auto", project=None,
))
