# Tissue characterisation (cmr_atlas.cine.tissue; docs/tissue.md): SAX landmarks on every LGE and
# T1-map series with the network of its sequence, and native/post T1 and ECV per AHA segment, per
# shard from ingest's series table and series cache (RESULTS/cache/series/, written by
# ingest_shard); then the cohort tables, with each exam's measured hematocrit from the covariates.
# Target: `snakemake tissue`.
_TISSUE_TABLES = ["tissue_landmarks", "t1_segments"]


rule tissue_shard:
    conda:
        CONDA_ENV
    input:
        series=RESULTS / "shards/{shard}/series.parquet",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in _TISSUE_TABLES},
        status=RESULTS / "shards/{shard}/status/tissue.parquet",
    log:
        RESULTS / "logs/tissue/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/tissue_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
        models_dir=str(MODELS_DIR),
    threads: 2
    script:
        "../../scripts/tissue_shard.py"


rule tissue:
    conda:
        CONDA_ENV
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in _TISSUE_TABLES},
        covariates=RESULTS / "covariates.parquet",
        extra=RESULTS / "covariates_extra.parquet",
    output:
        **{t: RESULTS / f"{t}.parquet" for t in _TISSUE_TABLES},
    log:
        RESULTS / "logs/tissue.log",
    benchmark:
        RESULTS / "benchmarks/tissue.tsv"
    script:
        "../../scripts/tissue_aggregate.py"
