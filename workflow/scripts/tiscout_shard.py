"""Snakemake script of rule tiscout_shard: cmr_atlas.tiscout.stage.tiscout_shard."""
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.tiscout.stage import run_shard

log_to_file(snakemake.log[0])  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
run_shard(snakemake.input.series, p.cache, out.ti_selection, out.lge_ti_audit, p.tiscout, p.models_dir,  # noqa: F821
          snakemake.threads)  # noqa: F821
