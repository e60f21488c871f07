# The guide-point seam: the manual path from annotations (a core lab's, or the synthetic truth),
# and the per-shard union of both sources that the fit stage reads.


rule manual_guide_points_shard:
    input:
        slices=RESULTS / "shards/{shard}/slices.parquet",
        exam_keys=RESULTS / "shards/{shard}/exam_keys.parquet",
        annotations=[str(ANNOTATIONS / f) for f in ("contours.parquet", "landmarks.parquet")] if ANNOTATIONS else [],
    output:
        RESULTS / "shards/{shard}/guide_points_manual.parquet",
    log:
        RESULTS / "logs/manual_guide_points/{shard}.log",
    params:
        annotations=str(ANNOTATIONS) if ANNOTATIONS else "",
        observer=config.get("manual_observer", "obs1"),
    script:
        "../scripts/manual_guide_points.py"


rule guide_points_shard:
    input:
        auto=RESULTS / "shards/{shard}/guide_points_auto.parquet",
        manual=RESULTS / "shards/{shard}/guide_points_manual.parquet",
    output:
        RESULTS / "shards/{shard}/guide_points.parquet",
    log:
        RESULTS / "logs/guide_points/{shard}.log",
    script:
        "../scripts/concat_tables.py"


rule guide_points:
    input:
        per_shard(RESULTS / "shards/{shard}/guide_points.parquet"),
    output:
        RESULTS / "guide_points.parquet",
    log:
        RESULTS / "logs/guide_points.log",
    script:
        "../scripts/concat_tables.py"
