# The guide-point seam: the manual path from annotations (a core lab's, or the synthetic truth),
# and the per-shard union of both sources that the fit stage reads.


rule manual_guide_points_shard:
    conda:
        CONDA_ENV
    input:
        slices=RESULTS / "shards/{shard}/slices.parquet",
        exam_keys=RESULTS / "shards/{shard}/exam_keys.parquet",
        annotations=[str(ANNOTATIONS / f) for f in ("contours.parquet", "landmarks.parquet")] if ANNOTATIONS else [],
        # the landmarks the annotations lack come from the shard's automated guide points: an input
        # only with config manual_landmarks_from_auto (and annotations to complete)
        auto_guide_points=[RESULTS / "shards/{shard}/guide_points_auto.parquet"]
        if config["manual_landmarks_from_auto"] and ANNOTATIONS
        else [],
    output:
        RESULTS / "shards/{shard}/guide_points_manual.parquet",
    log:
        RESULTS / "logs/manual_guide_points/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/manual_guide_points_shard/{shard}.tsv"
    params:
        # the annotations folder, derived from the input files (empty when none are configured)
        annotations=lambda wildcards, input: str(Path(input.annotations[0]).parent) if input.annotations else "",
        observer=config["manual_observer"],
    script:
        "../../scripts/manual_guide_points.py"


rule guide_points_shard:
    conda:
        CONDA_ENV
    input:
        auto=RESULTS / "shards/{shard}/guide_points_auto.parquet",
        manual=RESULTS / "shards/{shard}/guide_points_manual.parquet",
    output:
        RESULTS / "shards/{shard}/guide_points.parquet",
    log:
        RESULTS / "logs/guide_points/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/guide_points_shard/{shard}.tsv"
    script:
        "../../scripts/concat_tables.py"


rule guide_points:
    conda:
        CONDA_ENV
    input:
        per_shard(RESULTS / "shards/{shard}/guide_points.parquet"),
    output:
        RESULTS / "guide_points.parquet",
    log:
        RESULTS / "logs/guide_points.log",
    benchmark:
        RESULTS / "benchmarks/guide_points.tsv"
    script:
        "../../scripts/concat_tables.py"

