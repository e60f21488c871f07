"""Covariates (demographics, body size, risk factors) joined to exam_id without identifiers.

The user's covariates table (CSV or parquet) identifies exams by one key column: the exam folder
name, the StudyInstanceUID or the PatientID (config ``covariates_key`` says which,
``covariates_key_column`` names the column).  Ingest stores, per exam, only keyed hashes of those
identifiers (``exam_keys``: exam_id, key_type, key_hash = ``ids.keyed_hash(value, exam_id_key)``).
The join hashes the covariates' key column the same way and matches on (key_type, key_hash), so
no identifier is ever written.

Output design (``covariates.parquet``): the columns of a cohort's covariates vary, but a table
needs one documented schema.  So ``covariates`` has exam_id plus a fixed set of known columns
(:data:`KNOWN_COLUMNS`; null where the cohort lacks one), and every other usable column goes to
the long table ``covariates_extra`` (exam_id, name, value_num, value_str), so nothing is lost and
:func:`load_covariates_wide` gives analysts (and the stats stage) a single wide frame back.
Identifier-like columns (patient/study ids, folder names, names, birth dates, the key column) are
dropped before anything is written.

BSA: Mosteller, ``bsa_m2 = sqrt(height_cm * weight_kg / 3600)``, filled where height and weight are
known and ``bsa_m2`` is not; failing that, from the DICOM PatientSize (m) / PatientWeight (kg)
when ingest's ``exams`` table carries them (``patient_size_m``, ``patient_weight_kg``).
:func:`index_by_bsa` is the one place measures are indexed by it (edvi, esvi, lvmi).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.ids import KEY_TYPES, keyed_hash
from cmr_atlas.core.tables import Column, TableSchema, register, write_table

log = logging.getLogger(__name__)


# Known covariate columns: name -> (type, unit, description).  Binary risk factors are 0/1 ints.
KNOWN_COLUMNS: dict[str, tuple[str, str, str]] = {
    "group": ("str", "", "cohort subgroup (e.g. ASYMP, MI)"),
    "age": ("float", "years", "age at the exam"),
    "sex": ("str", "", "F or M"),
    "height_cm": ("float", "cm", "height"),
    "weight_kg": ("float", "kg", "weight"),
    "bsa_m2": ("float", "m2", "body surface area (given, else Mosteller from height and weight)"),
    "bsa_source": ("str", "", "covariates, mosteller, dicom or '' (unknown)"),
    "sbp": ("float", "mmHg", "systolic blood pressure"),
    "dbp": ("float", "mmHg", "diastolic blood pressure"),
    "heart_rate": ("float", "bpm", "heart rate"),
    "hypertension": ("int", "", "1 = hypertension"),
    "diabetes": ("int", "", "1 = diabetes"),
    "smoking": ("str", "", "never, former or current"),
    "current_smoker": ("int", "", "1 = current smoker"),
    "total_cholesterol": ("float", "mg/dl", "total cholesterol"),
    "high_cholesterol": ("int", "", "1 = high cholesterol (>= 240 mg/dl or treated)"),
    "calcium_score": ("float", "", "Agatston coronary calcium score"),
    "calcium_positive": ("int", "", "1 = calcium score > 0"),
    "mi": ("int", "", "1 = myocardial infarction"),
}

COVARIATES = register(TableSchema(
    name="covariates",
    description=(
        "Covariates joined to exam_id through keyed hashes of the configured key (no identifier "
        "is stored): a fixed set of known columns, null where the cohort's table lacks them; "
        "other columns are in covariates_extra."
    ),
    row="exam with covariates",
    columns=(
        Column("exam_id", "str", "exam", nullable=False),
        *(Column(k, t, d, u) for k, (t, u, d) in KNOWN_COLUMNS.items()),
    ),
))

COVARIATES_EXTRA = register(TableSchema(
    name="covariates_extra",
    description="Covariate columns outside the known set, in long form (one value per row).",
    row="exam and extra covariate",
    columns=(
        Column("exam_id", "str", "exam", nullable=False),
        Column("name", "str", "column name in the user's covariates table", nullable=False),
        Column("value_num", "float", "value when numeric"),
        Column("value_str", "str", "value when not numeric"),
    ),
))

COVARIATES_MISSING = register(TableSchema(
    name="covariates_missing",
    description="Exams that have no covariates row (they stay in the image outputs; stats skip them).",
    row="exam without covariates",
    columns=(
        Column("exam_id", "str", "exam", nullable=False),
        Column("reason", "str", "no key of the configured type, or no matching covariates row"),
    ),
))

# Column names that look like identifiers (matched case-insensitively on the normalised name).
_IDENTIFIER_RE = re.compile(
    r"(patient|study_?instance|series_?instance|sop_?instance|uid$|^uid|exam_?folder|folder|"
    r"(^|_)name($|_)|first_?name|last_?name|surname|birth|dob|mrn|accession|address|phone|email|"
    r"^id$|subject_?id|participant_?id|^exam_?id$)"
)


def is_identifier_column(name: str) -> bool:
    """True for columns that must never reach an output (ids, names, birth dates, folders)."""
    norm = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return bool(_IDENTIFIER_RE.search(norm))


def read_covariates(path: str | Path) -> pd.DataFrame:
    """Read a covariates table: ``.csv``/``.tsv``/``.txt`` as text, anything else as parquet."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"covariates table not found: {p}")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".txt"):
        return pd.read_csv(p, dtype={}, keep_default_na=True)
    if suffix == ".tsv":
        return pd.read_csv(p, sep="\t")
    return pd.read_parquet(p)


def mosteller_bsa(height_cm, weight_kg):
    """Mosteller body surface area in m2: sqrt(height_cm * weight_kg / 3600)."""
    h = np.asarray(height_cm, dtype=float)
    w = np.asarray(weight_kg, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(h * w / 3600.0)
    return np.where((h > 0) & (w > 0), out, np.nan)


@dataclass
class JoinResult:
    covariates: pd.DataFrame  # schema COVARIATES
    extra: pd.DataFrame  # schema COVARIATES_EXTRA
    missing: pd.DataFrame  # schema COVARIATES_MISSING
    n_unmatched_rows: int  # covariates rows that matched no exam
    n_duplicate_keys: int  # covariates rows dropped because their key repeats


def _to_binary(v: pd.Series) -> pd.Series:
    """0/1 from numbers, booleans and yes/no/true/false text; other values become null."""
    if pd.api.types.is_bool_dtype(v) or pd.api.types.is_numeric_dtype(v):
        num = pd.to_numeric(v, errors="coerce")
    else:
        s = v.astype("string").str.strip().str.lower()
        num = s.map({"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "y": 1, "n": 0})
        num = pd.to_numeric(num, errors="coerce")
    return num.where(num.isin([0, 1])).astype("Int64")


def _check_join_inputs(table: pd.DataFrame, exam_keys: pd.DataFrame, key_type: str, key_column: str) -> None:
    """Clear errors for a wrong key type, a missing key column or a malformed exam_keys table."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"covariates_key must be one of {KEY_TYPES}, got {key_type!r}")
    if key_column not in table.columns:
        raise ValueError(
            f"covariates key column {key_column!r} not in the covariates table "
            f"(it has {len(table.columns)} columns; set covariates_key_column)"
        )
    for c in ("exam_id", "key_type", "key_hash"):
        if c not in exam_keys.columns:
            raise ValueError(f"exam_keys table lacks column {c!r}")


def _hash_keys(table: pd.DataFrame, key_column: str, exam_id_key: str) -> tuple[pd.DataFrame, int]:
    """The rows with a key, with its keyed hash in ``_key_hash``, first row per key kept:
    (rows, number of rows dropped because their key repeats)."""
    tab = table.copy()
    tab["_key_hash"] = [keyed_hash(v, exam_id_key) if pd.notna(v) and str(v).strip() else None
                        for v in tab[key_column]]
    tab = tab[tab["_key_hash"].notna()]
    dup = tab["_key_hash"].duplicated(keep="first")
    n_dup = int(dup.sum())
    if n_dup:
        log.warning("covariates: %d rows repeat a key already seen; the first row per key is used", n_dup)
    return tab[~dup], n_dup


def _drop_identifiers(tab: pd.DataFrame, key_column: str) -> pd.DataFrame:
    """``tab`` without identifier-like columns, the key column and any exam_id/key_hash column
    (``_key_hash`` stays: it is what the join matches on)."""
    drop = {key_column, "key_hash", "exam_id"} | {c for c in tab.columns if c != "_key_hash" and is_identifier_column(c)}
    return tab.drop(columns=[c for c in drop if c in tab.columns])


def _match_exams(tab: pd.DataFrame, keys: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Covariates rows joined to exam_id on the key hash (``keys``: exam_id, key_hash of the
    configured type): (joined rows without the hashes, covariates rows that matched no exam)."""
    joined = keys.merge(tab, left_on="key_hash", right_on="_key_hash", how="inner")
    # One exam with several hashes of the same type (should not happen): keep its first match.
    joined = joined.drop_duplicates("exam_id", keep="first")
    n_unmatched = int((~tab["_key_hash"].isin(keys["key_hash"])).sum())
    return joined.drop(columns=["key_hash", "_key_hash"]), n_unmatched


def _known_columns(joined: pd.DataFrame) -> pd.DataFrame:
    """exam_id plus every :data:`KNOWN_COLUMNS` column except bsa_source, typed (binary risk
    factors as 0/1 Int64), null where the cohort lacks it."""
    out = pd.DataFrame({"exam_id": joined["exam_id"].astype(str).to_numpy()})
    for name, (typ, _unit, _d) in KNOWN_COLUMNS.items():
        if name == "bsa_source":
            continue
        if name in joined:
            v = joined[name].reset_index(drop=True)
            if typ == "int":
                out[name] = _to_binary(v)
            elif typ == "float":
                out[name] = pd.to_numeric(v, errors="coerce").astype(float)
            else:
                out[name] = v.astype("string").where(v.notna(), None).astype(object)
        else:
            out[name] = pd.Series([None] * len(out), dtype=object if typ == "str" else
                                  ("Int64" if typ == "int" else float))
    return out


def _extra_long(joined: pd.DataFrame) -> pd.DataFrame:
    """The columns outside :data:`KNOWN_COLUMNS` in long form (schema COVARIATES_EXTRA), null
    values left out."""
    exam_ids = pd.Series(joined["exam_id"].astype(str).to_numpy())
    frames = []
    for c in [c for c in joined.columns if c not in KNOWN_COLUMNS and c != "exam_id"]:
        v = joined[c].reset_index(drop=True)
        num = pd.to_numeric(v, errors="coerce") if not pd.api.types.is_bool_dtype(v) else v.astype(float)
        is_num = pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v)
        frames.append(pd.DataFrame({
            "exam_id": exam_ids, "name": str(c),
            "value_num": num.astype(float) if is_num else np.nan,
            "value_str": None if is_num else v.astype("string").astype(object),
        }))
    extra = pd.concat(frames, ignore_index=True) if frames else COVARIATES_EXTRA.empty()
    if len(extra):
        extra = extra[extra["value_num"].notna() | extra["value_str"].notna()]
    return extra.reset_index(drop=True)


def _missing_exams(
    joined_ids, keys: pd.DataFrame, exam_keys: pd.DataFrame, exams: pd.DataFrame | None, key_type: str,
) -> pd.DataFrame:
    """Exams (of ``exams``, else of ``exam_keys``) without a covariates row, with the reason
    (schema COVARIATES_MISSING); ``keys`` are the exam keys of the configured type."""
    all_exams = pd.Index(exams["exam_id"].astype(str).unique()) if exams is not None and "exam_id" in exams \
        else pd.Index(exam_keys["exam_id"].astype(str).unique())
    with_key = set(keys["exam_id"].astype(str))
    have = set(joined_ids)
    missing = [{"exam_id": e, "reason": ("no covariates row matches its key" if e in with_key
                                         else f"no {key_type} key recorded for the exam")}
               for e in all_exams if e not in have]
    return pd.DataFrame(missing, columns=COVARIATES_MISSING.column_names)


def join_covariates(
    table: pd.DataFrame,
    exam_keys: pd.DataFrame,
    key_type: str,
    key_column: str,
    exam_id_key: str,
    exams: pd.DataFrame | None = None,
) -> JoinResult:
    """Join a covariates table to exam_id through keyed hashes (see the module docstring).

    ``exam_keys``: exam_id, key_type, key_hash.  ``exams`` (optional, ingest's exams table) lists
    every exam to report as missing when it has no covariates, and may carry DICOM
    ``patient_size_m``/``patient_weight_kg`` for the BSA fallback.
    """
    _check_join_inputs(table, exam_keys, key_type, key_column)
    tab, n_dup = _hash_keys(table, key_column, exam_id_key)
    # Drop identifiers (and the key itself) before anything else touches the frame.
    tab = _drop_identifiers(tab, key_column)
    keys = exam_keys[exam_keys["key_type"] == key_type][["exam_id", "key_hash"]].drop_duplicates()
    joined, n_unmatched = _match_exams(tab, keys)
    out = _fill_bsa(_known_columns(joined), exams)
    extra = _extra_long(joined)
    missing = _missing_exams(out["exam_id"], keys, exam_keys, exams, key_type)
    log.info(
        "covariates: %d exams joined, %d exams without covariates, %d covariates rows matched no exam",
        len(out), len(missing), n_unmatched,
    )
    return JoinResult(out[COVARIATES.column_names], extra, missing, n_unmatched, n_dup)


def _fill_bsa(out: pd.DataFrame, exams: pd.DataFrame | None) -> pd.DataFrame:
    bsa = out["bsa_m2"].astype(float)
    source = pd.Series(np.where(bsa.notna(), "covariates", ""), index=out.index, dtype=object)
    most = pd.Series(mosteller_bsa(out["height_cm"], out["weight_kg"]), index=out.index)
    fill = bsa.isna() & most.notna()
    bsa[fill], source[fill] = most[fill], "mosteller"
    if exams is not None and {"patient_size_m", "patient_weight_kg"} <= set(exams.columns):
        e = exams.drop_duplicates("exam_id").set_index("exam_id")
        h = out["exam_id"].map(e["patient_size_m"]).astype(float) * 100.0
        w = out["exam_id"].map(e["patient_weight_kg"]).astype(float)
        dic = pd.Series(mosteller_bsa(h, w), index=out.index)
        fill = bsa.isna() & dic.notna()
        bsa[fill], source[fill] = dic[fill], "dicom"
    out["bsa_m2"] = bsa
    out["bsa_source"] = source
    return out


def load_covariates_wide(covariates_path: str | Path, extra_path: str | Path | None = None) -> pd.DataFrame:
    """``covariates.parquet`` with the ``covariates_extra`` columns pivoted back in (wide)."""
    cov = pd.read_parquet(covariates_path)
    if extra_path is not None and Path(extra_path).is_file():
        ex = pd.read_parquet(extra_path)
        if len(ex):
            val = ex["value_num"].astype(object).where(ex["value_num"].notna(), ex["value_str"])
            wide = ex.assign(value=val).pivot_table(index="exam_id", columns="name", values="value",
                                                    aggfunc="first")
            for c in wide.columns:
                conv = pd.to_numeric(wide[c], errors="coerce")
                wide[c] = conv if conv.notna().sum() == wide[c].notna().sum() else wide[c]
            wide = wide[[c for c in wide.columns if c not in cov.columns]]
            cov = cov.merge(wide, left_on="exam_id", right_index=True, how="left")
    return cov


def index_by_bsa(measures: pd.DataFrame, covariates: pd.DataFrame) -> pd.DataFrame:
    """Fill edvi, esvi, lvmi = edv_ml, esv_ml, lv_mass_g / bsa_m2 (null when BSA is unknown).

    The one BSA indexing of the package: the cohort measures aggregate applies it once, and the
    stats and report read the indexed measures.

    Other columns are untouched; rows keep their order; ``covariates`` needs exam_id and bsa_m2.
    """
    out = measures.copy()
    bsa = out["exam_id"].map(covariates.drop_duplicates("exam_id").set_index("exam_id")["bsa_m2"])
    bsa = pd.to_numeric(bsa, errors="coerce").astype(float)
    bsa = bsa.where(bsa > 0)
    for idx, raw in (("edvi", "edv_ml"), ("esvi", "esv_ml"), ("lvmi", "lv_mass_g")):
        if raw in out:
            out[idx] = pd.to_numeric(out[raw], errors="coerce").astype(float) / bsa
    return out


# --------------------------------------------------------------------------------------------
# Step entry point (cmr-atlas covariates and the workflow script)
# --------------------------------------------------------------------------------------------
_OUTPUT_SCHEMAS = {"covariates": COVARIATES, "extra": COVARIATES_EXTRA, "missing": COVARIATES_MISSING}


def covariates_paths(results_dir: str | Path) -> dict[str, Path]:
    """Where the covariates tables go under a results folder, keyed like :class:`JoinResult`'s
    tables (covariates, extra, missing)."""
    return {key: Path(results_dir) / f"{schema.name}.parquet" for key, schema in _OUTPUT_SCHEMAS.items()}


def write_covariates(
    out: Mapping[str, str | Path],
    covariates_path: str | Path | None,
    exam_keys_path: str | Path,
    key_type: str,
    key_column: str,
    exam_id_key: str,
    exams_path: str | Path | None = None,
) -> JoinResult:
    """Write the covariates, covariates_extra and covariates_missing tables to ``out["covariates"]``,
    ``out["extra"]`` and ``out["missing"]`` (e.g. from :func:`covariates_paths`).

    Without a covariates table (``covariates_path`` empty or None) the tables are written empty
    except covariates_missing, which lists every exam: the workflow's outputs stay the same.
    """
    if set(out) != set(_OUTPUT_SCHEMAS):
        raise ValueError(f"covariates outputs: need paths for {sorted(_OUTPUT_SCHEMAS)}, got {sorted(out)}")
    keys = pd.read_parquet(exam_keys_path)
    exams = pd.read_parquet(exams_path) if exams_path and Path(exams_path).is_file() else None
    if covariates_path:
        res = join_covariates(read_covariates(covariates_path), keys, key_type, key_column, exam_id_key, exams)
    else:
        ids = exams["exam_id"] if exams is not None else keys["exam_id"]
        miss = pd.DataFrame({"exam_id": sorted(set(ids.astype(str))), "reason": "no covariates table configured"})
        log.info("covariates: no covariates table configured; %d exams without covariates", len(miss))
        res = JoinResult(COVARIATES.empty(), COVARIATES_EXTRA.empty(), miss, 0, 0)
    for key, schema in _OUTPUT_SCHEMAS.items():
        write_table(getattr(res, key), out[key], schema)
    return res
