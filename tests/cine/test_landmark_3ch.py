"""The 3-chamber cine from ingest to the landmarks table (issue 16): ingest keeps a clinical exam's
3CH cine in the image cache and the shipped long-axis network finds its landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.inference import detect_landmarks, landmark_views, load_models
from cmr_atlas.core.config import default
from cmr_atlas.core.imagecache import load_exam_images
from cmr_atlas.core.tables import read_table
from cmr_atlas.dicom.index import ingest_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(clinical_synth_cohort, tmp_path_factory):
    """The clinical exam ingested with an image cache: (cached images, truth landmarks of its cine)."""
    cache = tmp_path_factory.mktemp("cache3ch")
    folder = next((clinical_synth_cohort / "dicom").iterdir()).name
    rows = ingest_folder(clinical_synth_cohort / "dicom", folder, "k", cache)
    assert [e["status"] for e in rows.exams] == ["ok"]
    images = load_exam_images(cache / f"{rows.exams[0]['exam_id']}.npz")
    truth = read_table(clinical_synth_cohort / "truth" / "landmarks.parquet")
    return images, truth[(truth["observer"] == "truth") & (truth["sequence"] == "cine_ssfp")]


def test_ingest_caches_the_3ch_cine_on_its_own_plane(ingested, clinical_synth_cohort):
    images, truth = ingested
    assert set(images.lax) == {"lax_2ch", "lax_3ch", "lax_4ch"}
    three = truth[truth["view"] == "lax_3ch"]
    plane = images.lax_planes["lax_3ch"]
    assert images.lax["lax_3ch"].shape[1:] == plane.shape and images.lax["lax_3ch"].shape[0] > three["frame"].max()
    # the truth 3CH landmarks lie in the cached plane (the 2CH and 4CH planes are other planes)
    xyz = three[["x_mm", "y_mm", "z_mm"]].to_numpy(float)
    for view, p in images.lax_planes.items():
        off = np.abs((xyz - p.position_mm) @ p.normal)
        assert (off.max() < 1.0) == (view == "lax_3ch"), view


def test_shipped_lax_network_finds_the_3ch_landmarks(ingested):
    images, truth = ingested
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


def test_no_sax_frames_gives_long_axis_rows_only(ingested):
    """A caller that wants the long-axis landmarks only (no SAX frames) gets them, no SAX input."""
    images, _ = ingested
    models = load_models(Path(__file__).resolve().parents[2] / "resources/models", method="heatmap", device="cpu", precision="auto")
    lm = detect_landmarks(images, models, [], absent_threshold=default("landmarks.absent_threshold"),
                          batch=default("inference.batch"))
    assert len(lm) and set(lm["view"]) <= set(images.lax) and "sax" not in set(lm["view"])
