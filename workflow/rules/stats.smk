# Covariates join (keyed hashes, no identifiers) and the risk-factor statistics (Table 5 analogue).


# Configured covariates table; empty config = <cohort_dir>/truth/subjects.parquet when the cohort
# is synthetic, else none ("" -> every exam is reported without covariates).
COVARIATES_TABLE = config["covariates"] or (
    str(COHORT / "truth" / "subjects.parquet") if (COHORT / "truth" / "subjects.parquet").is_file() else ""
)


rule covariates:
    conda:
        CONDA_ENV
    input:
        exam_keys=RESULTS / "exam_keys.parquet",
        exams=RESULTS / "exams.parquet",
        table=[COVARIATES_TABLE] if COVARIATES_TABLE else [],
    output:
        covariates=RESULTS / "covariates.parquet",
        extra=RESULTS / "covariates_extra.parquet",
        missing=RESULTS / "covariates_missing.parquet",
    log:
        RESULTS / "logs/covariates.log",
    benchmark:
        RESULTS / "benchmarks/covariates.tsv"
    params:
        key_type=config["covariates_key"],
        key_column=config["covariates_key_column"],
    script:
        "../scripts/covariates.py"


rule stats:
    conda:
        CONDA_ENV
    input:
        scores=RESULTS / "atlas/scores.parquet",
        covariates=RESULTS / "covariates.parquet",
        extra=RESULTS / "covariates_extra.parquet",
        measures=RESULTS / "measures.parquet",
    output:
        auc=RESULTS / "stats/risk_factor_auc.parquet",
        delong=RESULTS / "stats/delong.parquet",
        odds_ratios=RESULTS / "stats/odds_ratios.parquet",
        agreement=RESULTS / "stats/measures_agreement.parquet",
        oof=RESULTS / "stats/oof_predictions.parquet",
    log:
        RESULTS / "logs/stats.log",
    benchmark:
        RESULTS / "benchmarks/stats.tsv"
    params:
        stats=config["stats"],
    script:
        "../scripts/stats.py"
