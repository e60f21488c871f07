"""The 3-chamber cine from ingest to the landmarks table (issue 16): ingest keeps a clinical exam's
3CH cine in the image cache and the shipped long-axis network finds its landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.inference import detect_landmarks, landmark_views, load_models
from cmr_atlas.core.config import default

pytestmark = pytest.mark.slow


def test_ingest_caches_the_3ch_cine_on_its_own_plane(ingested_clinical, clinical_synth_cohort):
    images, truth = ingested_clinical
    assert set(images.lax) == {"lax_2ch", "lax_3ch", "lax_4ch"}
    three = truth[truth["view"] == "lax_3ch"]
    plane = images.lax_planes["lax_3ch"]
    assert images.lax["lax_3ch"].shape[1:] == plane.shape and images.lax["lax_3ch"].shape[0] > three["frame"].max()
    # the truth 3CH landmarks lie in the cached plane (the 2CH and 4CH planes are other planes)
    xyz = three[["x_mm", "y_mm", "z_mm"]].to_numpy(float)
    for view, p in images.lax_planes.items():
        off = np.abs((xyz - p.position_mm) @ p.normal)
        assert (off.max() < 1.0) == (view == "lax_3ch"), view


def test_shipped_lax_network_finds_the_3ch_landmarks(ingested_clinical):
    images, truth = ingested_clinical
    models = load_models(Path(__file__).resolve().parents[2] / "resources/models", method="heatmap", device="cpu", precision="auto")
    if "lax_3ch" not in landmark_views(models):
        pytest.fail("the shipped long-axis network is not trained on 3CH (its card's views)")
    lm = detect_landmarks(images, models, [0], absent_threshold=default("landmarks.absent_threshold"),
                          batch=default("inference.batch"), sequences={"lax_3ch": "cine_ssfp"})
    three = lm[lm["view"] == "lax_3ch"]
    assert (three["sequence"] == "cine_ssfp").all() and len(three) == 3 * images.lax["lax_3ch"].shape[0]
    both = three.merge(truth[truth["view"] == "lax_3ch"], on=["frame", "landmark"], suffixes=("", "_t"))
    assert len(both) and both["present"].mean() >= 0.95
    d = np.linalg.norm(both[["x_mm", "y_mm", "z_mm"]].to_numpy(float)
                       - both[["x_mm_t", "y_mm_t", "z_mm_t"]].to_numpy(float), axis=1)
    per = pd.Series(d[both["present"].to_numpy()]).groupby(both["landmark"][both["present"]].to_numpy()).median()
    assert set(per.index) == {"lvot_anteroseptal", "mv_inferolateral", "apex"}
    assert (per < 5.0).all(), per.to_dict()  # channels named right: a swap would put both mitral points ~20 mm off


def test_no_sax_frames_gives_long_axis_rows_only(ingested_clinical):
    """A caller that wants the long-axis landmarks only (no SAX frames) gets them, no SAX input."""
    images, _ = ingested_clinical
    models = load_models(Path(__file__).resolve().parents[2] / "resources/models", method="heatmap", device="cpu", precision="auto")
    lm = detect_landmarks(images, models, [], absent_threshold=default("landmarks.absent_threshold"),
                          batch=default("inference.batch"))
    assert len(lm) and set(lm["view"]) <= set(images.lax) and "sax" not in set(lm["view"])
