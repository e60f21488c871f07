"""The landmarks table's ``sequence`` column and the 3-chamber view (issue 16)."""

import numpy as np
import pandas as pd
import torch

from cmr_atlas.cine.inference import LANDMARKS_AUTO, Models, cine_sequences, infer_exam, landmark_views
from cmr_atlas.nets.heatmaps import gaussian_targets
from cmr_atlas.core.config import default
from cmr_atlas.core.tables import conform
from cmr_atlas.nets.preprocess import Grid

GRID = Grid(1.5, 64)
INFER = {"ed_method": default("segmentation.ed_frame"), "absent_threshold": default("landmarks.absent_threshold"),
         "batch": default("inference.batch")}


class Peaks(torch.nn.Module):
    """Heatmap stand-in: every landmark at a fixed network pixel; as segmentation: all background."""

    def __init__(self, k=3, classes=None):
        super().__init__()
        self.k, self.classes = k, classes

    def forward(self, x):
        if self.classes:
            out = torch.full((x.shape[0], self.classes, *x.shape[-2:]), -9.0)
            out[:, 0] = 0.0
            return out
        pts = torch.tensor([[20.0, 20.0], [20.0, 44.0], [50.0, 32.0]])[None].repeat(x.shape[0], 1, 1)
        return torch.log(gaussian_targets(pts, x.shape[-1], 2.0).clamp_min(1e-4))


def _exam_with_lax(ring_exam):
    images, _ = ring_exam(n_slices=2, n_frames=3, noise=False)
    for v in ("lax_2ch", "lax_3ch", "lax_4ch"):
        images.lax[v] = images.sax[0].copy()
        images.lax_planes[v] = images.sax_planes[0]
    return images


def _models(lax_views):
    card = {"input": GRID.to_dict()}
    lax_card = {**card, "views": list(lax_views)} if lax_views is not None else card
    return Models(Peaks(classes=4), card, "heatmap", {"lax": (Peaks(), lax_card), "sax": (Peaks(), card)},
                  torch.device("cpu"), None)


def test_3ch_only_with_a_model_trained_on_it_and_named_as_its_view(ring_exam):
    images = _exam_with_lax(ring_exam)
    legacy = infer_exam(images, _models(None), **INFER).landmarks  # card without views: 2CH and 4CH
    assert set(legacy["view"]) == {"lax_2ch", "lax_4ch", "sax"}
    assert legacy["sequence"].isna().all()
    lm = infer_exam(images, _models(["lax_2ch", "lax_4ch", "lax_3ch"]), sequences={"lax_3ch": "cine_ssfp",
                    "sax": "cine_ssfp", "lax_2ch": "cine_ssfp"}, **INFER).landmarks
    conform(lm, LANDMARKS_AUTO)
    three = lm[lm["view"] == "lax_3ch"]
    assert len(three) == 3 * 3 and list(three["landmark"][:3]) == ["lvot_anteroseptal", "mv_inferolateral", "apex"]
    assert (three["sequence"] == "cine_ssfp").all() and lm[lm["view"] == "lax_4ch"]["sequence"].isna().all()
    # same network output, same positions: the view only names the channels
    two = lm[lm["view"] == "lax_2ch"]
    assert np.allclose(three[["x_px", "y_px"]].to_numpy(), two[["x_px", "y_px"]].to_numpy())
    assert landmark_views(_models(["lax_2ch", "lax_4ch"])) == ("lax_2ch", "lax_4ch")


def test_cine_sequences_from_the_series_table():
    series = pd.DataFrame({"exam_id": ["A", "A", "A", "A", "B"],
                           "role": ["sax", "lax_2ch", "ignored", "lax_3ch", "sax"],
                           "sequence": ["cine_ssfp", "cine_ssfp", "lge", "cine_ssfp", None]})
    assert cine_sequences(series) == {("A", "sax"): "cine_ssfp", ("A", "lax_2ch"): "cine_ssfp",
                                      ("A", "lax_3ch"): "cine_ssfp"}


def test_run_shard_writes_sequences_and_landmark_measures(tmp_path, ring_exam):
    from cmr_atlas.cine.inference import run_shard
    from cmr_atlas.cine.landmark_measures import LANDMARK_MEASURES
    from cmr_atlas.core.imagecache import save_exam_images

    images = _exam_with_lax(ring_exam)
    save_exam_images(images, tmp_path / "cache" / "X1.npz")
    out = tmp_path / "out"
    run_shard(["X1"], tmp_path / "cache", _models(["lax_2ch", "lax_4ch"]), landmarks_path=out / "lm.parquet",
              qc_path=out / "qc.parquet", phases_path=out / "ph.parquet", masks_dir=out / "masks",
              status_path=out / "st.parquet", sequences={("X1", "lax_2ch"): "cine_gre", ("X2", "sax"): "cine_ssfp"},
              measures_path=out / "measures.parquet", **INFER)
    lm = pd.read_parquet(out / "lm.parquet")
    assert set(lm[lm["view"] == "lax_2ch"]["sequence"]) == {"cine_gre"} and lm[lm["view"] != "lax_2ch"]["sequence"].isna().all()
    m = pd.read_parquet(out / "measures.parquet")
    conform(m, LANDMARK_MEASURES)
    # every LAX frame has both mitral points and the apex: one length per frame of each cine
    lax = m[m["view"] != "sax"]
    assert len(lax) == 2 * images.n_frames and lax["lv_length_mm"].between(10, 100).all()
    # apex (50, 32) to the mitral midpoint (20, 32) in network pixels of 1.5 mm
    assert np.allclose(lax["lv_length_mm"], 30 * 1.5, atol=0.5)
    sax = m[m["view"] == "sax"]
    assert len(sax) and np.isfinite(sax["rv_insert_angle_deg"]).all()
