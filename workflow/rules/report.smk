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
    output:
        RESULTS / "report/index.html",
    log:
        RESULTS / "logs/report.log",
    benchmark:
        RESULTS / "benchmarks/report.tsv"
    params:
        models_dir=config["models_dir"],
    script:
        "../scripts/report.py"
