"""Snakemake script of rule tissue_shard: cmr_atlas.cine.tissue.stage.run_shard."""
from cmr_atlas.cine.tissue.stage import run_shard
from cmr_atlas.core.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
run_shard(snakemake.input.series, p.cache, p.models_dir, snakemake.config, out.tissue_landmarks,  # noqa: F821
          out.t1_segments, out.status, snakemake.threads)  # noqa: F821
