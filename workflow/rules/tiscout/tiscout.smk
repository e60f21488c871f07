# TI scout: null point of every scout and the LGE inversion-time audit, per shard, then for the
# cohort.  Reads ingest's per-shard series table and the series cache RESULTS/cache/series/ (written
# by ingest_shard as a side effect, like the cine cache).  Exams without a scout get no rows.
from cmr_atlas.core.config import find_models_dir

_TISCOUT_TABLES = ["ti_selection", "lge_ti_audit"]


rule tiscout_shard:
    conda:
        CONDA_ENV
    input:
        series=RESULTS / "shards/{shard}/series.parquet",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in _TISCOUT_TABLES},
    log:
        RESULTS / "logs/tiscout/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/tiscout_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
        models_dir=str(find_models_dir(config["models_dir"])),
        tiscout=config["tiscout"],
    threads: 2
    script:
        "../../scripts/tiscout_shard.py"


rule tiscout:
    conda:
        CONDA_ENV
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in _TISCOUT_TABLES},
    output:
        **{t: RESULTS / f"{t}.parquet" for t in _TISCOUT_TABLES},
    log:
        RESULTS / "logs/tiscout.log",
    script:
        "../../scripts/tiscout_aggregate.py"
