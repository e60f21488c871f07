# Every exam's outcome in every per-exam stage (cmr_atlas.core.runner.EXAM_STATUS): one file per
# shard and stage, written by the stage's own job, concatenated here into one cohort table.
STATUS_STAGES = ["ingest", "infer", "auto_guide_points", "fit", "tissue"]


rule exam_status:
    conda:
        CONDA_ENV
    input:
        [f for stage in STATUS_STAGES for f in per_shard(RESULTS / f"shards/{{shard}}/status/{stage}.parquet")],
    output:
        RESULTS / "exam_status.parquet",
    log:
        RESULTS / "logs/exam_status.log",
    benchmark:
        RESULTS / "benchmarks/exam_status.tsv"
    script:
        "../scripts/exam_status.py"
