# Atlas: generalised Procrustes + PCA of the fitted shapes, one atlas per source (auto, manual)
# on the same exams. Outputs: atlas/scores, atlas/explained_variance, atlas/<source>.npz,
# VTP surfaces and PNG renders of the first modes.  With them the motion atlas (docs/motion.md:
# the per-frame fits' phase-normalised trajectories, atlas/motion_*) and its risk-factor AUCs
# beside the ED+ES modes' (stats/motion_auc; config block stats).
rule atlas:
    conda:
        CONDA_ENV
    input:
        shapes=RESULTS / "shapes.parquet",
        exams=RESULTS / "exams.parquet",
        motion_shapes=RESULTS / "motion_shapes.parquet",
        covariates=RESULTS / "covariates.parquet",
    output:
        scores=RESULTS / "atlas/scores.parquet",
        explained_variance=RESULTS / "atlas/explained_variance.parquet",
        motion_scores=RESULTS / "atlas/motion_scores.parquet",
        motion_explained_variance=RESULTS / "atlas/motion_explained_variance.parquet",
        motion_auc=RESULTS / "stats/motion_auc.parquet",
    log:
        RESULTS / "logs/atlas.log",
    benchmark:
        RESULTS / "benchmarks/atlas.tsv"
    params:
        n_components=config["atlas"]["n_components"],
        scaling=config["atlas"]["scaling"],
        modes_to_render=config["atlas"]["modes_to_render"],
        stats=config["stats"],
        # the npz, VTP surfaces and renders go beside the declared tables (lint: derived, not hardcoded)
        atlas_dir=lambda wildcards, output: str(Path(output.scores).parent),
    script:
        "../../scripts/atlas.py"
