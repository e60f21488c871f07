# LV model fitting with breath-hold correction and clinical measures (cmr_atlas.cine.lvmodel).
# Per shard: guide points + slice planes -> shapes, model frames, slice shifts, measures, wall
# thickness; then one cohort table each.  Optional config (defaults in brackets):
#   fit: {breath_hold: true, shift_reference: sax_mean, vtp: false}
FIT_TABLES = ["shapes", "model_frames", "slice_shifts", "measures", "wall_thickness"]
_FIT_CFG = config.get("fit", {}) or {}


rule fit_shard:
    conda:
        CONDA_ENV
    input:
        guide_points=RESULTS / "shards/{shard}/guide_points.parquet",
        slices=RESULTS / "shards/{shard}/slices.parquet",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in FIT_TABLES},
        status=RESULTS / "shards/{shard}/status/fit.parquet",
    log:
        RESULTS / "logs/fit/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/fit_shard/{shard}.tsv"
    params:
        breath_hold=bool(_FIT_CFG.get("breath_hold", True)),
        shift_reference=str(_FIT_CFG.get("shift_reference", "sax_mean")),
        vtp_dir=(str(RESULTS / "vtp") if _FIT_CFG.get("vtp", False) else None),
    threads: 1
    script:
        "../scripts/fit.py"


rule fit:
    conda:
        CONDA_ENV
    input:
        **{t: per_shard(RESULTS / f"shards/{{shard}}/{t}.parquet") for t in FIT_TABLES},
        covariates=RESULTS / "covariates.parquet",
    output:
        **{t: RESULTS / f"{t}.parquet" for t in FIT_TABLES},
    log:
        RESULTS / "logs/fit_aggregate.log",
    benchmark:
        RESULTS / "benchmarks/fit.tsv"
    script:
        "../scripts/fit_aggregate.py"


# Every exam's outcome in every per-exam stage (cmr_atlas.core.runner.EXAM_STATUS): one file per
# shard and stage, written by the stage's own job, concatenated here.
STATUS_STAGES = ["ingest", "infer", "auto_guide_points", "fit"]


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
