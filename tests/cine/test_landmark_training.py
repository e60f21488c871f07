"""Landmark training data in the current channel order: folders built before the 3CH order changed
are upgraded in place of being generated again."""

import json

import numpy as np

from cmr_atlas.cine.landmarks import landmark_names
from cmr_atlas.cine.training import load_data, upgrade_channel_order
from cmr_atlas.nets.samples import VIEW_CODES, Samples
from cmr_atlas.core.vocab import LANDMARKS


def test_upgrade_permutes_only_the_views_whose_order_changed(tmp_path):
    grid = {"spacing_mm": 1.5, "size": 8}
    rng = np.random.default_rng(0)
    views = np.array([VIEW_CODES["lax_2ch"], VIEW_CODES["lax_3ch"], VIEW_CODES["lax_4ch"]], np.int8)
    pts = rng.uniform(0, 8, (3, 3, 2)).astype(np.float32)
    pts[1, 0] = np.nan  # an absent landmark moves with its channel
    old = tmp_path / "old"
    Samples(rng.normal(size=(3, 8, 8)).astype(np.float16), np.zeros(3, np.int32), views, ["e"], points=pts
            ).save(old / "lm_lax.npz")
    Samples(np.zeros((1, 8, 8), np.float16), np.zeros(1, np.int32), np.zeros(1, np.int8), ["e"],
            points=np.ones((1, 3, 2), np.float32)).save(old / "lm_sax.npz")
    Samples(np.zeros((1, 8, 8), np.float16), np.zeros(1, np.int32), np.zeros(1, np.int8), ["e"],
            labels=np.zeros((1, 8, 8), np.uint8)).save(old / "seg.npz")
    (old / "data.json").write_text(json.dumps({"n_exams": 1, "images": {"lm_lax": 3}, "segmentation_grid": grid,
                                               "landmark_grid": grid}))
    info = upgrade_channel_order(old, tmp_path / "new")
    assert info["channels_by_view"]["lax_3ch"] == list(landmark_names("lax_3ch"))
    got, _ = load_data([tmp_path / "new"], "lm_lax")  # accepted now
    vocab = list(LANDMARKS["lax_3ch"])
    perm = [vocab.index(n) for n in landmark_names("lax_3ch")]
    np.testing.assert_array_equal(got.points[1], pts[1][perm])
    np.testing.assert_array_equal(got.points[[0, 2]], pts[[0, 2]])
    np.testing.assert_array_equal(got.images, Samples.load(old / "lm_lax.npz").images)
    # upgrading an upgraded folder changes nothing
    upgrade_channel_order(tmp_path / "new", tmp_path / "again")
    np.testing.assert_array_equal(load_data([tmp_path / "again"], "lm_lax")[0].points, got.points)
