# Covariates join (keyed hashes, no identifiers) and the risk-factor statistics (Table 5 analogue).


def covariates_table():
    """Configured covariates table; empty config = <cohort_dir>/truth/subjects.parquet when the
    cohort is synthetic, else none ("" -> every exam is reported without covariates)."""
    path = config.get("covariates", "")
    if path:
        return path
    synth = COHORT / "truth" / "subjects.parquet"
    return str(synth) if synth.is_file() else ""


rule covariates:
    input:
        exam_keys=RESULTS / "exam_keys.parquet",
        exams=RESULTS / "exams.parquet",
        table=lambda wc: [covariates_table()] if covariates_table() else [],
    output:
        covariates=RESULTS / "covariates.parquet",
        extra=RESULTS / "covariates_extra.parquet",
        missing=RESULTS / "covariates_missing.parquet",
    log:
        RESULTS / "logs/covariates.log",
    params:
        out=str(RESULTS),
        table=covariates_table(),
        key_type=config.get("covariates_key", "exam_folder"),
        key_column=config.get("covariates_key_column", "exam_id"),
    script:
        "../scripts/covariates.py"


rule stats:
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
    params:
        out=str(RESULTS),
        stats=config.get("stats", {}),
    script:
        "../scripts/stats.py"
