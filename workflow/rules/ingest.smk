# Ingest: DICOM exams -> de-identified exam index + image cache, one job per shard.
# The cache files RESULTS/cache/<exam_id>.npz are named by content (exam ids), so they are written
# as a side effect of ingest_shard and not declared as outputs; the shard's exams table lists them.
_INGEST_TABLES = ["exams", "series", "slices", "exam_keys"] + (["linkage"] if config.get("linkage", False) else [])


rule ingest_shard:
    input:
        folders=RESULTS / "shards/{shard}/folders.txt",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in _INGEST_TABLES},
    log:
        RESULTS / "logs/ingest/{shard}.log",
    params:
        cohort=str(COHORT),
        cache=str(RESULTS / "cache"),
        linkage=bool(config.get("linkage", False)),
    script:
        "../scripts/ingest_shard.py"


rule ingest:
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in _INGEST_TABLES},
    output:
        **{t: RESULTS / f"{t}.parquet" for t in _INGEST_TABLES},
    log:
        RESULTS / "logs/ingest.log",
    script:
        "../scripts/ingest_aggregate.py"
