# Atlas: generalised Procrustes + PCA of the fitted shapes, one atlas per source (auto, manual)
# on the same exams. Outputs: atlas/scores, atlas/explained_variance, atlas/<source>.npz,
# VTP surfaces and PNG renders of the first modes.
rule atlas:
    conda:
        CONDA_ENV
    input:
        shapes=RESULTS / "shapes.parquet",
        exams=RESULTS / "exams.parquet",
    output:
        scores=RESULTS / "atlas/scores.parquet",
        explained_variance=RESULTS / "atlas/explained_variance.parquet",
    log:
        RESULTS / "logs/atlas.log",
    benchmark:
        RESULTS / "benchmarks/atlas.tsv"
    params:
        n_components=config["atlas"]["n_components"],
        scaling=config["atlas"]["scaling"],
        modes_to_render=config["atlas"]["modes_to_render"],
        # the npz, VTP surfaces and renders go beside the declared tables (lint: derived, not hardcoded)
        atlas_dir=lambda wildcards, output: str(Path(output.scores).parent),
    script:
        "../../scripts/atlas.py"
