"""Keyed, de-identified exam ids.

``exam_id`` = "E" + the first 16 hex digits of HMAC-SHA256(key, StudyInstanceUID).  The key lives in
config (``exam_id_key``), so the same cohort always gets the same ids and nobody without the key
can link an id back to a study.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# The identifiers ingest stores keyed hashes of (exam_keys.key_type), so covariates keyed by any of
# them join to exam_id without the identifier reaching an output.
KEY_TYPES = ("exam_folder", "study_instance_uid", "patient_id")


def exam_id(study_instance_uid: str, key: str) -> str:
    """De-identified exam id for a StudyInstanceUID under ``key``."""
    if not key:
        raise ValueError("exam_id_key must be a non-empty string")
    digest = hmac.new(key.encode(), str(study_instance_uid).strip().encode(), hashlib.sha256)
    return "E" + digest.hexdigest()[:16]


def keyed_hash(value: str, key: str) -> str:
    """HMAC-SHA256 of any identifier (folder name, PatientID, StudyInstanceUID) under ``key``.

    Ingest stores these hashes (never the identifiers) so that a covariates table keyed by any of
    them can be joined to ``exam_id`` later by hashing its key column the same way.
    """
    if not key:
        raise ValueError("exam_id_key must be a non-empty string")
    return hmac.new(key.encode(), str(value).strip().encode(), hashlib.sha256).hexdigest()


def folder_map(exam_keys: "pd.DataFrame", folders: list[str], key: str) -> dict[str, str]:
    """``{exam folder name: exam_id}`` for the given folders, via ingest's keyed hashes (the
    ``exam_keys`` table's ``exam_folder`` rows): how annotations named by folder reach exam ids."""
    fk = exam_keys[exam_keys["key_type"] == "exam_folder"]
    by_hash = dict(zip(fk["key_hash"], fk["exam_id"]))
    return {f: by_hash[keyed_hash(f, key)] for f in folders if keyed_hash(f, key) in by_hash}
