"""Cine landmarks: the ``landmarks`` table, which landmark network serves which view, and the
names of its channels.  The heatmaps themselves (targets, decoding, test-time rotations,
calibrated thresholds) are :mod:`cmr_atlas.nets.heatmaps`; at inference a landmark below its
absent threshold (the card's calibrated one, else the config's ``landmarks.absent_threshold``) is
absent.

Model channels are generic per model (``MODEL_LANDMARKS``); the view decides the names
(:data:`cmr_atlas.core.vocab.LANDMARKS`): on the long-axis model ``mv_a``/``mv_b`` are
``mv_anterior``/``mv_inferior`` on a 2CH image, ``mv_septal``/``mv_lateral`` on a 4CH image and
``lvot_anteroseptal``/``mv_inferolateral`` on a 3CH image (:data:`CHANNEL_ORDER`).
"""

from __future__ import annotations

from cmr_atlas.core.columns import EXAM_ID, FRAME, PATIENT_XYZ_MM, SLICE_INDEX, VIEW
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import LANDMARKS


LANDMARKS_AUTO = register(TableSchema(
    name="landmarks", row="landmark per image",
    description=(
        "CNN landmarks: long-axis views on every frame (lax_3ch where the exam's images have it and "
        "the long-axis network was trained on it), SAX slices at ED and ES. Pixel positions "
        "in the original image (x = column, y = row, sub-pixel, pixel centres at integers); "
        "patient coordinates via the slice plane. Absent landmarks have present = false and null "
        "positions."
    ),
    columns=(
        EXAM_ID,
        VIEW,
        SLICE_INDEX,
        FRAME,
        Column("landmark", "str", "landmark name (cmr_atlas.core.vocab.LANDMARKS)", nullable=False),
        Column("x_px", "float", "column in the original image", "px"),
        Column("y_px", "float", "row in the original image", "px"),
        *PATIENT_XYZ_MM,
        Column("confidence", "float", "heatmap peak probability (1 for coordinate regression)"),
        Column("present", "bool", "detected: peak probability >= the absent threshold the network's card "
               "calibrated for the image's sequence, view and landmark, else landmarks.absent_threshold; "
               "a SAX lv_centre also where the segmentation has a plausible LV cavity (its centroid; "
               "landmarks.lv_centre_from_mask), with the heatmap's lower peak as confidence",
               nullable=False),
        Column("method", "str", "heatmap or vgg"),
        Column("sequence", "str", "the cine's acquisition contrast from ingest's series table "
               "(cmr_atlas.core.vocab.SEQUENCES: cine_gre, cine_ssfp, lge, t1map); null when not known"),
    ),
))

# model -> views it serves; channel k+1 of that model is landmark k of the view's tuple
# (a model card's ``views`` says which of them a shipped network was trained on)
MODEL_VIEWS: dict[str, tuple[str, ...]] = {"lax": ("lax_2ch", "lax_4ch", "lax_3ch"), "sax": ("sax",)}
MODEL_LANDMARKS: dict[str, tuple[str, ...]] = {
    "lax": ("mv_a", "mv_b", "apex"),
    "sax": LANDMARKS["sax"],
}


def view_model(view: str) -> str:
    for model, views in MODEL_VIEWS.items():
        if view in views:
            return model
    raise ValueError(f"no landmark model for view {view!r}")


# Channel order where it differs from the vocabulary's: on every long-axis view channel ``mv_a``
# is the anterior/septal side of the mitral annulus (2CH anterior, 4CH septal, 3CH the anteroseptal
# LVOT point), so similar-looking images of different views ask for the same channel layout (with
# the vocabulary's 3CH order a mixed 2CH/3CH/4CH network swapped the mitral points; docs/models.md).
CHANNEL_ORDER: dict[str, tuple[str, ...]] = {"lax_3ch": ("lvot_anteroseptal", "mv_inferolateral", "apex")}


def landmark_names(view: str, card: dict | None = None) -> tuple[str, ...]:
    """Names of the model channels 1..K on an image of ``view``: the order the network of ``card``
    was trained with (its ``landmarks_by_view``) where the card records it, else
    :data:`CHANNEL_ORDER` or the vocabulary's."""
    trained = (card or {}).get("landmarks_by_view", {})
    if view in trained:
        return tuple(trained[view])
    return CHANNEL_ORDER.get(view, LANDMARKS[view])
