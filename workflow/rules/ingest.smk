# Ingest: DICOM exams -> de-identified exam index + image cache, one job per shard.
# The cache files RESULTS/cache/<exam_id>.npz are named by content (exam ids), so they are written
# as a side effect of ingest_shard and not declared as outputs; the shard's exams table lists them.
# linkage is a boolean (validated in common.smk): on the command line `--config linkage=True`.
_LINKAGE = config["linkage"]
_INGEST_TABLES = ["exams", "series", "slices", "exam_keys"] + (["linkage"] if _LINKAGE else [])


rule ingest_shard:
    conda:
        CONDA_ENV
    input:
        folders=RESULTS / "shards/{shard}/folders.txt",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in _INGEST_TABLES},
        status=RESULTS / "shards/{shard}/status/ingest.parquet",
    log:
        RESULTS / "logs/ingest/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/ingest_shard/{shard}.tsv"
    params:
        cohort=str(COHORT),
        cache=str(RESULTS / "cache"),
        linkage=_LINKAGE,
    script:
        "../scripts/ingest_shard.py"


rule ingest:
    conda:
        CONDA_ENV
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in _INGEST_TABLES},
    output:
        **{t: RESULTS / f"{t}.parquet" for t in _INGEST_TABLES},
    log:
        RESULTS / "logs/ingest.log",
    benchmark:
        RESULTS / "benchmarks/ingest.tsv"
    script:
        "../scripts/ingest_aggregate.py"
