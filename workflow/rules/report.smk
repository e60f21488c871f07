# Cohort HTML report: RESULTS/report/index.html with its PNG figures beside it.
rule report:
    conda:
        CONDA_ENV
    input:
        exams=RESULTS / "exams.parquet",
        measures=RESULTS / "measures.parquet",
        covariates=RESULTS / "covariates.parquet",
        scores=RESULTS / "atlas/scores.parquet",
        explained_variance=RESULTS / "atlas/explained_variance.parquet",
        auc=RESULTS / "stats/risk_factor_auc.parquet",
        delong=RESULTS / "stats/delong.parquet",
        agreement=RESULTS / "stats/measures_agreement.parquet",
        # the Review section (cmr_atlas/report/review.py); it also reads the shards' segmentation_qc,
        # phases and masks and the image cache, all written before these
        exam_status=RESULTS / "exam_status.parquet",
        guide_points=RESULTS / "guide_points.parquet",
        # the perfusion and TI scout sections (cmr_atlas/report/perfusion.py, tiscout.py)
        perfusion_series=RESULTS / "perfusion_series.parquet",
        perfusion_global=RESULTS / "perfusion_global.parquet",
        perfusion_by_risk_factor=RESULTS / "perfusion_by_risk_factor.parquet",
        ti_selection=RESULTS / "ti_selection.parquet",
        lge_ti_audit=RESULTS / "lge_ti_audit.parquet",
        # the tissue section (cmr_atlas/report/tissue.py)
        t1_segments=RESULTS / "t1_segments.parquet",
    output:
        RESULTS / "report/index.html",
    log:
        RESULTS / "logs/report.log",
    benchmark:
        RESULTS / "benchmarks/report.tsv"
    params:
        models_dir=config["models_dir"],
        review_max_exams=config["report"]["review_max_exams"],
    script:
        "../scripts/report.py"
