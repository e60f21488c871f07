"""The automated path's LAX views registered to the SAX stack on the images, then the ED/ES fit.

A source with SAX contours but only landmarks in the LAX views (the automated path) cannot estimate
the LAX views' breath-hold shifts in the model fit, and their mitral hinge points then move the
base plane along the long axis by the view's displacement: the largest error of the automated
volumes (docs/motion.md).  :func:`fit_exam_lax_registered` fits once (SAX shifts), registers each
LAX view to the SAX stack by the intersection-line intensity profiles
(:func:`cmr_atlas.cine.lax_registration.lax_view_shifts`) and fits again with the LAX landmarks
corrected by those shifts (:func:`~cmr_atlas.cine.lvmodel.exam.fit_exam` ``fixed_shifts``), so the
fit's ``shifts`` list the LAX views too and the per-frame fits correct every frame's landmarks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.cine.lax_registration import lax_view_shifts
from cmr_atlas.cine.lvmodel.exam import ExamFit, StagedFit, _xyz, fit_exam, fit_exam_staged
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import ExamImages


def lv_centres(gp: pd.DataFrame) -> dict[int, np.ndarray]:
    """Centre (patient mm) of each SAX slice's ED endocardial contour."""
    c = gp[(gp["kind"] == "contour") & (gp["view"] == "sax") & (gp["surface"] == "endo") & (gp["phase"] == "ED")]
    return {int(k): _xyz(g).mean(axis=0) for k, g in c.groupby("slice_index")}


def landmark_only_views(gp: pd.DataFrame) -> set[str]:
    """LAX views with landmarks but no contours (the automated path's)."""
    lax = gp[gp["view"] != "sax"]
    return set(lax.loc[lax["kind"] == "landmark", "view"].astype(str)) - set(lax.loc[lax["kind"] == "contour", "view"].astype(str))


def fit_exam_lax_registered(gp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane], images: ExamImages | None,
                            exam_id: str, source: str, *, breath_hold: bool, shift_reference: str,
                            first: ExamFit | StagedFit | None = None) -> ExamFit:
    """ED/ES fit with the landmark-only LAX views registered on ``images`` (else :func:`fit_exam`
    as it is).  ``first``: the plain fit if already made (its SAX shifts start the registration),
    finished or staged; the refit replaces it, so a staged one is completed only if it is returned
    (the caller may also fall back on it when the refit fails)."""
    if first is None:
        first = fit_exam_staged(gp, planes, exam_id, source, breath_hold=breath_hold, shift_reference=shift_reference)
    staged = first if isinstance(first, StagedFit) else None
    fit0 = staged.fit if staged is not None else first

    def plain() -> ExamFit:
        return staged.finish() if staged is not None else fit0

    views = landmark_only_views(gp) & set(images.lax) if images is not None else set()
    if not breath_hold or fit0.status == "failed" or not views:
        return plain()
    sax = {int(k): d for v, k, d in fit0.shifts if v == "sax"}
    found = lax_view_shifts(images, lv_centres(gp), sax, views)
    lax_slice = {str(v): int(k) for v, k in zip(gp["view"], gp["slice_index"].fillna(0)) if v != "sax"}
    fixed = {(v, lax_slice[v]): d for v, d in found.items() if v in lax_slice}
    if not fixed:
        return plain()
    return fit_exam(gp, planes, exam_id, source, breath_hold=breath_hold, shift_reference=shift_reference,
                    fixed_shifts=fixed)
