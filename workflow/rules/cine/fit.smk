# LV model fitting with breath-hold correction and clinical measures (cmr_atlas.cine.lvmodel).
# Per shard: guide points + slice planes -> shapes, model frames, slice shifts, measures, wall
# thickness, and the per-frame fits' volume_curves and function_indices (automated source: every
# frame's guide points from the inference masks and landmarks; empty with fit.all_frames off); then one cohort table each.  Config block `fit`
# (breath_hold, shift_reference, through_plane, lax_registration, vtp, all_frames).
FIT_TABLES = ["shapes", "model_frames", "slice_shifts", "measures", "wall_thickness", "volume_curves",
              "function_indices", "motion_shapes"]


rule fit_shard:
    conda:
        CONDA_ENV
    input:
        guide_points=RESULTS / "shards/{shard}/guide_points.parquet",
        slices=RESULTS / "shards/{shard}/slices.parquet",
        # every frame's automated guide points come from inference's masks and landmarks
        exams=RESULTS / "shards/{shard}/exams.parquet",
        landmarks=RESULTS / "shards/{shard}/landmarks.parquet",
        qc=RESULTS / "shards/{shard}/segmentation_qc.parquet",
        phases=RESULTS / "shards/{shard}/phases.parquet",
        masks=RESULTS / "shards/{shard}/masks",
    output:
        **{t: RESULTS / f"shards/{{shard}}/{t}.parquet" for t in FIT_TABLES},
        status=RESULTS / "shards/{shard}/status/fit.parquet",
    log:
        RESULTS / "logs/fit/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/fit_shard/{shard}.tsv"
    params:
        breath_hold=config["fit"]["breath_hold"],
        shift_reference=config["fit"]["shift_reference"],
        vtp_dir=str(RESULTS / "vtp") if config["fit"]["vtp"] else None,
        all_frames=config["fit"]["all_frames"],
        through_plane=config["fit"]["through_plane"],
        lax_registration=config["fit"]["lax_registration"],
        cache=str(RESULTS / "cache"),
    threads: 1
    script:
        "../../scripts/fit.py"


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
        "../../scripts/fit_aggregate.py"
