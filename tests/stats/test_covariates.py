import logging

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.stats.covariates import (
    COVARIATES,
    COVARIATES_EXTRA,
    COVARIATES_MISSING,
    index_by_bsa,
    is_identifier_column,
    join_covariates,
    load_covariates_wide,
    mosteller_bsa,
    read_covariates,
)
from cmr_atlas.core.ids import keyed_hash
from cmr_atlas.core.tables import conform, write_table

KEY = "test-key"


def exam_keys(folders):
    rows = []
    for i, f in enumerate(folders):
        rows.append({"exam_id": f"E{i:016x}", "key_type": "exam_folder", "key_hash": keyed_hash(f, KEY)})
        rows.append({"exam_id": f"E{i:016x}", "key_type": "patient_id", "key_hash": keyed_hash(f"P{i}", KEY)})
    return pd.DataFrame(rows)


def subjects():
    # shaped like the synthetic cohort's truth/subjects.parquet
    return pd.DataFrame({
        "exam_id": ["synth_000", "synth_001", "synth_002", "stranger"],
        "study_instance_uid": ["1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.9"],
        "patient_id": ["P0", "P1", "P2", "P9"],
        "group": ["ASYMP", "MI", "ASYMP", "ASYMP"],
        "age": [61.0, 70.0, 55.0, 40.0],
        "sex": ["F", "M", "M", "F"],
        "height_cm": [165.0, 180.0, np.nan, 170.0],
        "weight_kg": [60.0, 90.0, 80.0, 70.0],
        "hypertension": [1, 0, 1, 0],
        "diabetes": ["yes", "no", "no", "no"],
        "calcium_score": [0.0, 12.5, 3.0, 0.0],
        "smoking": ["never", "current", "former", "never"],
        "ldl": [100.0, 130.0, 90.0, 80.0],
        "site_comment": ["a", "b", "c", "d"],
        "Patient Name": ["X^Y", "A^B", "C^D", "E^F"],
        "birth_date": ["1940-01-01"] * 4,
    })


def test_join_by_folder_keeps_no_identifier(caplog):
    folders = ["synth_000", "synth_001", "synth_002", "synth_003"]
    with caplog.at_level(logging.INFO):
        r = join_covariates(subjects(), exam_keys(folders), "exam_folder", "exam_id", KEY)
    conform(r.covariates, COVARIATES)
    conform(r.extra, COVARIATES_EXTRA)
    conform(r.missing, COVARIATES_MISSING)
    cov = r.covariates.set_index("exam_id")
    assert list(cov.index) == ["E0000000000000000", "E0000000000000001", "E0000000000000002"]
    assert cov.loc["E0000000000000001", "age"] == 70.0 and cov.loc["E0000000000000000", "diabetes"] == 1
    assert cov["calcium_positive"].isna().all()  # known column absent from the input: null
    assert r.missing["exam_id"].tolist() == ["E0000000000000003"] and r.n_unmatched_rows == 1
    assert set(r.extra["name"]) == {"ldl", "site_comment"}
    everything = " ".join(map(str, [*r.covariates.to_numpy().ravel(), *r.extra.to_numpy().ravel(),
                                    *r.covariates.columns, *r.extra["name"], caplog.text]))
    for ident in ("synth_00", "1.2.3", "P1", "X^Y", "1940", "Patient"):
        assert ident not in everything
    assert "3 exams joined, 1 exams without covariates" in caplog.text


def test_join_by_patient_id_and_bsa():
    r = join_covariates(subjects(), exam_keys(["a", "b", "c"]), "patient_id", "patient_id", KEY)
    cov = r.covariates.set_index("exam_id")
    assert len(cov) == 3
    assert cov.loc["E0000000000000000", "bsa_m2"] == pytest.approx(np.sqrt(165 * 60 / 3600))
    assert cov.loc["E0000000000000000", "bsa_source"] == "mosteller"
    assert np.isnan(cov.loc["E0000000000000002", "bsa_m2"]) and cov.loc["E0000000000000002", "bsa_source"] == ""
    # DICOM PatientSize/PatientWeight fallback
    exams = pd.DataFrame({"exam_id": cov.index, "patient_size_m": [1.6, 1.8, 1.75],
                          "patient_weight_kg": [60, 90, 80]})
    r2 = join_covariates(subjects(), exam_keys(["a", "b", "c"]), "patient_id", "patient_id", KEY, exams)
    c2 = r2.covariates.set_index("exam_id")
    assert c2.loc["E0000000000000002", "bsa_m2"] == pytest.approx(np.sqrt(175 * 80 / 3600))
    assert c2.loc["E0000000000000002", "bsa_source"] == "dicom"


def test_clear_errors_and_identifier_names():
    with pytest.raises(ValueError, match="key column 'folder'"):
        join_covariates(subjects(), exam_keys(["a"]), "exam_folder", "folder", KEY)
    with pytest.raises(ValueError, match="covariates_key must be"):
        join_covariates(subjects(), exam_keys(["a"]), "mrn", "exam_id", KEY)
    for name in ("PatientID", "patient_id", "StudyInstanceUID", "exam_folder", "Name", "DOB", "birth_date"):
        assert is_identifier_column(name), name
    for name in ("age", "sex", "hypertension", "bsa_m2", "calcium_score", "smoking"):
        assert not is_identifier_column(name), name


def test_read_csv_and_parquet_and_wide(tmp_path):
    s = subjects()
    s.to_csv(tmp_path / "c.csv", index=False)
    s.to_parquet(tmp_path / "c.parquet")
    for p in ("c.csv", "c.parquet"):
        r = join_covariates(read_covariates(tmp_path / p), exam_keys(["synth_000", "synth_001"]),
                            "exam_folder", "exam_id", KEY)
        assert len(r.covariates) == 2
    write_table(r.covariates, tmp_path / "covariates.parquet", COVARIATES)
    write_table(r.extra, tmp_path / "covariates_extra.parquet", COVARIATES_EXTRA)
    wide = load_covariates_wide(tmp_path / "covariates.parquet", tmp_path / "covariates_extra.parquet")
    assert wide.set_index("exam_id").loc["E0000000000000001", "ldl"] == 130.0
    with pytest.raises(FileNotFoundError):
        read_covariates(tmp_path / "nope.csv")


def test_index_by_bsa():
    m = pd.DataFrame({"exam_id": ["a", "b", "c"], "source": "auto", "edv_ml": [140.0, 120.0, 100.0],
                      "esv_ml": [50.0, 40.0, 30.0], "lv_mass_g": [100.0, 90.0, 80.0],
                      "edvi": np.nan, "esvi": np.nan, "lvmi": np.nan, "ef_pct": [64.0, 66.0, 70.0]})
    cov = pd.DataFrame({"exam_id": ["a", "b"], "bsa_m2": [2.0, np.nan]})
    out = index_by_bsa(m, cov)
    assert out.loc[0, "edvi"] == 70.0 and out.loc[0, "esvi"] == 25.0 and out.loc[0, "lvmi"] == 50.0
    assert out.loc[1:, ["edvi", "esvi", "lvmi"]].isna().all().all()
    assert out["ef_pct"].tolist() == [64.0, 66.0, 70.0] and list(out.columns) == list(m.columns)


def test_mosteller():
    assert mosteller_bsa(180, 80) == pytest.approx(2.0)
    assert np.isnan(mosteller_bsa(0, 80))


@pytest.mark.parametrize("key_type,column", [("exam_folder", "exam_id"), ("study_instance_uid", "study_instance_uid"),
                                             ("patient_id", "patient_id")])
def test_join_synthetic_subjects_table(key_type, column):
    """The synthetic cohort's truth/subjects table (its schema and generator) joins by any key."""
    from cmr_atlas.core.ids import exam_id
    from cmr_atlas.synth.subjects import sample_subjects
    from cmr_atlas.synth.truth import SUBJECTS

    sub = sample_subjects(np.random.default_rng(3), 5)
    sub["exam_id"] = [f"SYN3-{i:04d}" for i in range(5)]
    sub["study_instance_uid"] = [f"1.2.826.0.{i}" for i in range(5)]
    sub["patient_id"] = [f"MESA{i:07d}" for i in range(5)]
    sub = sub[SUBJECTS.column_names]
    conform(sub, SUBJECTS)
    keys = pd.DataFrame([{"exam_id": exam_id(u, KEY), "key_type": t, "key_hash": keyed_hash(v, KEY)}
                         for f, u, p in zip(sub.exam_id, sub.study_instance_uid, sub.patient_id)
                         for t, v in (("exam_folder", f), ("study_instance_uid", u), ("patient_id", p))])
    r = join_covariates(sub, keys, key_type, column, KEY)
    cov = r.covariates.set_index("exam_id")
    expected = sub.set_index(pd.Index([exam_id(u, KEY) for u in sub.study_instance_uid]))
    assert len(cov) == 5 and len(r.missing) == 0 and len(r.extra) == 0  # every column is a known one
    for c in ("age", "bsa_m2", "sbp", "hypertension", "diabetes", "current_smoker", "high_cholesterol",
              "calcium_positive", "calcium_score", "mi"):
        np.testing.assert_allclose(cov[c].astype(float), expected.loc[cov.index, c].astype(float), err_msg=c)
    assert (cov["sex"] == expected.loc[cov.index, "sex"]).all()
    # the generator's BSA is Mosteller (to its rounding)
    np.testing.assert_allclose(mosteller_bsa(sub.height_cm, sub.weight_kg), sub.bsa_m2, atol=2e-3)
    flat = " ".join(map(str, r.covariates.to_numpy().ravel()))
    assert "SYN3" not in flat and "MESA" not in flat and "1.2.826" not in flat


def test_duplicate_keys_keep_the_first_row(caplog):
    table = pd.concat([subjects(), subjects().iloc[[1]].assign(age=99.0)], ignore_index=True)
    with caplog.at_level(logging.WARNING):
        r = join_covariates(table, exam_keys(["synth_000", "synth_001"]), "exam_folder", "exam_id", KEY)
    assert r.n_duplicate_keys == 1 and "1 rows repeat a key" in caplog.text
    assert r.covariates.set_index("exam_id").loc["E0000000000000001", "age"] == 70.0


def _inputs(tmp_path):
    subjects().to_csv(tmp_path / "subjects.csv", index=False)
    exam_keys(["synth_000", "synth_001", "other"]).to_parquet(tmp_path / "exam_keys.parquet")
    return tmp_path / "subjects.csv", tmp_path / "exam_keys.parquet"


def test_write_covariates_to_explicit_paths(tmp_path):
    from cmr_atlas.core.tables import read_table
    from cmr_atlas.stats.covariates import covariates_paths, write_covariates

    table, keys = _inputs(tmp_path)
    out = covariates_paths(tmp_path / "results")
    assert {k: p.name for k, p in out.items()} == {
        "covariates": "covariates.parquet", "extra": "covariates_extra.parquet", "missing": "covariates_missing.parquet"}
    r = write_covariates(out, table, keys, "exam_folder", "exam_id", KEY)
    pd.testing.assert_frame_equal(read_table(out["covariates"], COVARIATES), r.covariates, check_dtype=False)
    assert read_table(out["missing"], COVARIATES_MISSING)["exam_id"].tolist() == ["E0000000000000002"]
    assert set(read_table(out["extra"], COVARIATES_EXTRA)["name"]) == {"ldl", "site_comment"}
    # no covariates table configured: empty tables, every exam missing
    elsewhere = {k: tmp_path / "none" / f"{k}.parquet" for k in out}
    r = write_covariates(elsewhere, None, keys, "exam_folder", "exam_id", KEY)
    assert len(pd.read_parquet(elsewhere["covariates"])) == 0 and len(pd.read_parquet(elsewhere["missing"])) == 3
    with pytest.raises(ValueError, match="need paths for"):
        write_covariates({"covariates": tmp_path / "c.parquet"}, table, keys, "exam_folder", "exam_id", KEY)


def test_covariates_cli(tmp_path, capsys):
    from cmr_atlas.cli import main
    from cmr_atlas.core.config import load_config

    table, keys = _inputs(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"cohort_dir: {tmp_path}\nresults_dir: {tmp_path}\nexam_id_key: {KEY}\n")
    load_config(config)  # a valid config
    assert main(["covariates", "--covariates", str(table), "--exam-keys", str(keys), "--config", str(config),
                 "--out", str(tmp_path / "r")]) == 0
    assert "2 exams joined, 1 without covariates" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "r" / "covariates.parquet")) == 2


def test_covariates_cli_defaults_come_from_the_config_schema():
    import argparse

    from cmr_atlas.cli import covariates as cli
    from cmr_atlas.core.config import default

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--exam-keys", "k", "--out", "o"])
    assert (args.key_type, args.key_column) == (default("covariates_key"), default("covariates_key_column"))


def test_workflow_covariates_script_writes_the_rule_outputs(tmp_path):
    """workflow/scripts/covariates.py with a stand-in for Snakemake's ``snakemake`` object."""
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    table, keys = _inputs(tmp_path)
    output = SimpleNamespace(**{k: str(tmp_path / "out" / f"{k}.parquet") for k in ("covariates", "extra", "missing")})
    smk = SimpleNamespace(
        input=SimpleNamespace(table=[str(table)], exam_keys=str(keys), exams=str(tmp_path / "no_exams.parquet")),
        output=output, params=SimpleNamespace(key_type="exam_folder", key_column="exam_id"),
        config={"exam_id_key": KEY}, log=[str(tmp_path / "covariates.log")])
    script = Path(__file__).parents[2] / "workflow" / "scripts" / "covariates.py"
    runpy.run_path(str(script), init_globals={"snakemake": smk})
    assert len(pd.read_parquet(output.covariates)) == 2 and len(pd.read_parquet(output.missing)) == 1
    assert set(pd.read_parquet(output.extra)["name"]) == {"ldl", "site_comment"}
