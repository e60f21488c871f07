# CNN inference per shard, then the automated guide points (source auto).
# Needs ingest's per-shard exams.parquet (exam_ids, status) and the image cache RESULTS/cache/.
from cmr_atlas.core.config import find_models_dir

MODELS_DIR = find_models_dir(config["models_dir"])


rule infer_shard:
    conda:
        CONDA_ENV
    input:
        exams=RESULTS / "shards/{shard}/exams.parquet",
        series=RESULTS / "shards/{shard}/series.parquet",  # the landmarks' sequence column
    output:
        landmarks=RESULTS / "shards/{shard}/landmarks.parquet",
        measures=RESULTS / "shards/{shard}/landmark_measures.parquet",
        qc=RESULTS / "shards/{shard}/segmentation_qc.parquet",
        phases=RESULTS / "shards/{shard}/phases.parquet",
        masks=directory(RESULTS / "shards/{shard}/masks"),
        status=RESULTS / "shards/{shard}/status/infer.parquet",
    log:
        RESULTS / "logs/infer/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/infer_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
        models_dir=str(MODELS_DIR),
        method=config["landmarks"]["method"],
        absent_threshold=config["landmarks"]["absent_threshold"],
        lv_centre_from_mask=config["landmarks"]["lv_centre_from_mask"],
        ed_frame=config["segmentation"]["ed_frame"],
        device=config["device"],
        batch=config["inference"]["batch"],
        precision=config["inference"]["precision"],
        runtime=config["inference"]["runtime"],
        crop_margin_mm=config["inference"]["crop_margin_mm"],
        frames=config["inference"]["frames"],
    # torch uses the job's threads on CPU.
    threads: 1
    # Scheduling hints: on a cluster give each inference job one GPU (e.g. `--resources gpu=1` to
    # run one at a time locally, or map `gpu` to a slurm gres in a profile).  Without a GPU the
    # same job runs on the CPU (config device: auto); `mem_mb` covers one exam's images + models.
    resources:
        gpu=1,
        mem_mb=4000,
    script:
        "../../scripts/infer_shard.py"


rule auto_guide_points_shard:
    conda:
        CONDA_ENV
    input:
        exams=RESULTS / "shards/{shard}/exams.parquet",
        landmarks=RESULTS / "shards/{shard}/landmarks.parquet",
        qc=RESULTS / "shards/{shard}/segmentation_qc.parquet",
        phases=RESULTS / "shards/{shard}/phases.parquet",
        masks=RESULTS / "shards/{shard}/masks",
    output:
        guide_points=RESULTS / "shards/{shard}/guide_points_auto.parquet",
        status=RESULTS / "shards/{shard}/status/auto_guide_points.parquet",
    log:
        RESULTS / "logs/auto_guide_points/{shard}.log",
    benchmark:
        RESULTS / "benchmarks/auto_guide_points_shard/{shard}.tsv"
    params:
        cache=str(RESULTS / "cache"),
    script:
        "../../scripts/auto_guide_points.py"


rule infer:
    conda:
        CONDA_ENV
    input:
        per_shard(RESULTS / "shards/{shard}/guide_points_auto.parquet"),
