# Myocardial perfusion (cmr_atlas.perfusion; docs/perfusion.md): per shard from ingest's series
# table and the series cache (RESULTS/cache/series/, a side effect of ingest_shard), the manual path
# from the annotations when there are any; then the cohort tables.  Target: `snakemake perfusion`.
_PERFUSION_TABLES = ["perfusion_series", "perfusion_segments", "perfusion_global", "aif_curves"]


rule perfusion_shard:
    conda:
        CONDA_ENV
    input:
        series=RESULTS / "shards/{shard}/series.parquet",
        exam_keys=RESULTS / "shards/{shard}/exam_keys.parquet",
        annotations=[str(ANNOTATIONS / f) for f in ("contours.parquet", "landmarks.parquet")] if ANNOTATIONS else [],
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in _PERFUSION_TABLES},
        maps=directory(RESULTS / "shards/{shard}/perfusion_maps"),
    log:
        RESULTS / "logs/perfusion/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/perfusion_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
        models_dir=str(MODELS_DIR),
        annotations=lambda wildcards, input: str(Path(input.annotations[0]).parent) if input.annotations else "",
        observer=config["manual_observer"],
    threads: 2
    script:
        "../../scripts/perfusion_shard.py"


rule perfusion:
    conda:
        CONDA_ENV
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in _PERFUSION_TABLES},
    output:
        **{t: RESULTS / f"{t}.parquet" for t in _PERFUSION_TABLES},
    log:
        RESULTS / "logs/perfusion.log",
    script:
        "../../scripts/perfusion_aggregate.py"


# Cohort level: global MBF and reserve by risk factor (cmr_atlas.stats.perfusion_risk), with the
# covariates as the cine statistics read them; joinable with the cine tables by exam_id.
rule perfusion_by_risk_factor:
    conda:
        CONDA_ENV
    input:
        perfusion_global=RESULTS / "perfusion_global.parquet",
        covariates=RESULTS / "covariates.parquet",
        extra=RESULTS / "covariates_extra.parquet",
    output:
        RESULTS / "perfusion_by_risk_factor.parquet",
    log:
        RESULTS / "logs/perfusion_by_risk_factor.log",
    benchmark:
        RESULTS / "benchmarks/perfusion_by_risk_factor.tsv"
    params:
        risk_factors=config["stats"]["risk_factors"],
    script:
        "../../scripts/perfusion_by_risk_factor.py"
