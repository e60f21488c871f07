# Perfusion stage of one shard: cmr_atlas.perfusion.shard.
from cmr_atlas.core.logs import log_to_file
from cmr_atlas.perfusion.shard import perfusion_shard

log_to_file(snakemake.log[0])  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
perfusion_shard(snakemake.input.series, snakemake.input.exam_keys, p.cache, p.models_dir,  # noqa: F821
                snakemake.config["perfusion"], {t: out[t] for t in ("perfusion_series", "perfusion_segments",  # noqa: F821
                "perfusion_global", "aif_curves")}, out.maps, p.annotations or None, p.observer,
                snakemake.config["exam_id_key"])  # noqa: F821
