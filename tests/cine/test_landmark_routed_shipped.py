"""The shipped SAX landmark networks routed by sequence (issue 16): a bSSFP cine's SAX slices go to
``lm_heatmap_sax_ssfp``, a GRE one's to ``lm_heatmap_sax``, and the bSSFP network finds the
clinical exam's SAX landmarks where the truth has them."""

from __future__ import annotations

import numpy as np
import pytest

from cmr_atlas.cine.inference import detect_landmarks, load_models
from cmr_atlas.core.config import default
from tests.cine.conftest import MODELS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped():
    return load_models(MODELS_DIR, method="heatmap", device="cpu", precision="auto")


def test_shipped_sax_landmarks_are_routed_by_sequence(shipped):
    assert shipped.landmark_for("sax", "cine_ssfp")[1]["name"] == "lm_heatmap_sax_ssfp"
    assert shipped.landmark_for("sax", "cine_gre")[1]["name"] == "lm_heatmap_sax"  # the legacy path's network
    assert shipped.landmark_for("sax", None)[1]["name"] == "lm_heatmap_sax"
    assert shipped.landmark_for("lax", "cine_ssfp")[1]["name"] == "lm_heatmap_lax"  # no routed long-axis one


def test_shipped_bssfp_sax_network_finds_the_clinical_exams_landmarks(shipped, ingested_clinical):
    images, truth = ingested_clinical
    frames = sorted(int(f) for f in truth[(truth["view"] == "sax") & truth["phase"].notna()]["frame"].unique())
    assert frames
    lm = detect_landmarks(images, shipped, frames, absent_threshold=default("landmarks.absent_threshold"),
                          batch=default("inference.batch"), sequences={"sax": "cine_ssfp"})
    sax = lm[lm["view"] == "sax"]
    assert (sax["sequence"] == "cine_ssfp").all()
    t = truth[(truth["view"] == "sax") & truth["frame"].isin(frames)]
    both = sax.merge(t, on=["slice_index", "frame", "landmark"], suffixes=("", "_t"))
    assert len(both) == len(t)  # every truth landmark has its row (the cache keeps the series' slice order)
    assert both["present"].mean() >= 0.9
    found = both[both["present"]]
    d = np.linalg.norm(found[["x_mm", "y_mm", "z_mm"]].to_numpy(float)
                       - found[["x_mm_t", "y_mm_t", "z_mm_t"]].to_numpy(float), axis=1)
    per = found.assign(d=d).groupby("landmark")["d"].median()
    assert set(per.index) == {"rv_insert_anterior", "rv_insert_posterior", "lv_centre"}
    assert (per < 4.0).all(), per.to_dict()  # anterior/inferior swapped would be ~30 mm off
