"""The project's vocabulary: names and label values that tables, files and code share.

Each is defined here once; every module imports it from here.

* views: ``sax``, ``lax_2ch``, ``lax_4ch``, ``lax_3ch`` (clinical exams)
* sequences: :data:`SEQUENCES` (the contrast an image was acquired with)
* phases: ``ED``, ``ES``
* surfaces: ``endo``, ``epi``
* landmarks per view: :data:`LANDMARKS`
* mask label values: :data:`LABELS` (and the constants :data:`MYO`, :data:`CAVITY`, :data:`RV`)
"""

from __future__ import annotations

VIEWS: tuple[str, ...] = ("sax", "lax_2ch", "lax_4ch", "lax_3ch")  # new views go last: codes are stable
LAX_VIEWS: tuple[str, ...] = ("lax_2ch", "lax_4ch")  # the legacy cine long-axis views
CLINICAL_LAX_VIEWS: tuple[str, ...] = ("lax_2ch", "lax_3ch", "lax_4ch")
# Legacy gradient-echo cine, bSSFP cine, first-pass perfusion, late gadolinium enhancement
# (magnitude or phase-sensitive), T1 maps (MOLLI-like), inversion-time scout.
SEQUENCES: tuple[str, ...] = ("cine_gre", "cine_ssfp", "perfusion", "lge", "t1map", "ti_scout")
PHASES: tuple[str, ...] = ("ED", "ES")
# ``frame`` of annotations on a perfusion series' motion-corrected pose (the heart's median breathing
# position over the dynamic frames, the grid the motion correction aligns to), not on one acquired frame
CORRECTED_POSE_FRAME: int = -1
SURFACES: tuple[str, ...] = ("endo", "epi")

LANDMARKS: dict[str, tuple[str, ...]] = {
    # mitral-valve hinge points and the epicardial apex on the long-axis views
    "lax_2ch": ("mv_anterior", "mv_inferior", "apex"),
    "lax_4ch": ("mv_septal", "mv_lateral", "apex"),
    # 3-chamber (LVOT) view: the inferolateral mitral hinge and the anteroseptal point where the
    # septum meets the LV outflow tract (Xue et al. 2021, Figure 1)
    "lax_3ch": ("mv_inferolateral", "lvot_anteroseptal", "apex"),
    # RV insertion points (where the RV free wall meets the septum) and the LV cavity centre
    "sax": ("rv_insert_anterior", "rv_insert_posterior", "lv_centre"),
}

# Values of a label mask (image cache ``sax_masks``, inference mask files, training labels).
LABELS: dict[str, int] = {"background": 0, "myocardium": 1, "lv_cavity": 2, "rv_cavity": 3}
BACKGROUND: int = LABELS["background"]
MYO: int = LABELS["myocardium"]
CAVITY: int = LABELS["lv_cavity"]
RV: int = LABELS["rv_cavity"]


def one_of(names: tuple[str, ...]) -> str:
    """``"a, b or c"``: the names as a column description lists them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
