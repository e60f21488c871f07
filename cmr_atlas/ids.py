"""Keyed, de-identified exam ids.

``exam_id`` = "E" + the first 16 hex digits of HMAC-SHA256(key, StudyInstanceUID).  The key lives in
config (``exam_id_key``), so the same cohort always gets the same ids and nobody without the key
can link an id back to a study.
"""

from __future__ import annotations

import hashlib
import hmac


def exam_id(study_instance_uid: str, key: str) -> str:
    """De-identified exam id for a StudyInstanceUID under ``key``."""
    if not key:
        raise ValueError("exam_id_key must be a non-empty string")
    digest = hmac.new(key.encode(), str(study_instance_uid).strip().encode(), hashlib.sha256)
    return "E" + digest.hexdigest()[:16]
