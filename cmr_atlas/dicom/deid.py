"""De-identification: keyed exam ids and keyed hashes of linkage keys.

* ``exam_id`` = :func:`cmr_atlas.core.ids.exam_id` of the StudyInstanceUID.  A folder whose files carry
  no StudyInstanceUID (or no readable DICOM at all) gets the id of the pseudo-UID
  ``folder:<folder name>``, so it still has a stable row with its failure reason.
* ``exam_keys`` rows: the keyed hash of the top-level folder name, the StudyInstanceUID and the
  PatientID, so a covariates table keyed by any of them joins without identifiers in the outputs.
"""

from __future__ import annotations

from cmr_atlas.core import ids


def pseudo_study_uid(folder: str) -> str:
    """Stand-in StudyInstanceUID for files without one (never written to any output)."""
    return f"folder:{folder}"


def exam_id(study_uid: str, key: str) -> str:
    return ids.exam_id(study_uid, key)


def key_rows(exam_id_: str, key: str, folder: str, study_uid: str | None, patient_id: str | None) -> list[dict]:
    """``exam_keys`` rows for one exam (only the keys that exist)."""
    values = {"exam_folder": folder, "study_instance_uid": study_uid, "patient_id": patient_id}
    return [
        {"exam_id": exam_id_, "key_type": t, "key_hash": ids.keyed_hash(v, key)}
        for t, v in values.items()
        if v and not (t == "study_instance_uid" and v.startswith("folder:"))
    ]
