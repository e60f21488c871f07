"""The Review section: which exams are listed and why (cmr_atlas.stats.review), their order and cap,
the overlay strips (cmr_atlas.report.overlay) and the section in the page."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.config import default
from cmr_atlas.report.page import build_report
from cmr_atlas.report.review import rank_exams
from cmr_atlas.stats.review import REVIEW_COLUMNS, review_exams


def test_every_reason_is_found_in_the_documented_order(review_results, review_expected):
    ranked = rank_exams(review_results, max_exams=100)
    got = list(zip(ranked.exams["exam_id"], ranked.exams["priority"]))
    assert got == review_expected
    assert ranked.n_candidates == len(review_expected)
    assert list(ranked.exams.columns) == list(REVIEW_COLUMNS)
    why = ranked.exams.set_index("exam_id")["reasons"]
    assert why["E05"] == "ingest failed: no short-axis stack"
    assert why["X2"] == "infer failed: empty masks"
    assert why["E04"] == "fit manual failed: too few guide points"  # from measures, not doubled by exam_status
    assert why["E03"] == "fit auto partial: no ES contours on 2 slices"
    assert why["E06"] == "segmentation QC at ES: cavity_outside_myo, two_cavities (slices 1)"
    assert why["X1"].startswith("EDV auto - manual +40.0 ml (z +")
    assert "E07" not in set(ranked.exams["exam_id"])  # flagged only at a frame that is neither ED nor ES


def test_cap_keeps_the_most_urgent_and_counts_the_rest(review_results, review_expected):
    ranked = rank_exams(review_results, max_exams=3)
    assert list(ranked.exams["exam_id"]) == [e for e, _ in review_expected[:3]]
    assert ranked.n_candidates == len(review_expected)
    assert rank_exams(review_results, max_exams=0).exams.empty


def _pairs(diffs: dict[str, float], n_quiet: int = 12) -> pd.DataFrame:
    """measures with auto - manual EDV = diffs[exam], and +-1 ml for n_quiet other exams."""
    d = {**{f"Q{i:02d}": (1.0 if i % 2 else -1.0) for i in range(n_quiet)}, **diffs}
    rows = []
    for exam, di in d.items():
        rows += [{"exam_id": exam, "source": "manual", "method": "model", "edv_ml": 150.0, "status": "ok"},
                 {"exam_id": exam, "source": "auto", "method": "model", "edv_ml": 150.0 + di, "status": "ok"}]
    return pd.DataFrame(rows)


def test_disagreements_rank_by_z_then_exam_id():
    ranked = review_exams(10, measures=_pairs({"B": 30.0, "A": -45.0, "C": 30.0}, n_quiet=30)).exams
    assert list(ranked["exam_id"]) == ["A", "B", "C"]  # |z| of A largest; B and C tie, by exam_id
    assert (ranked["priority"] == "disagreement").all()
    assert ranked["max_abs_z"].iloc[0] > ranked["max_abs_z"].iloc[1] > 1.96


def test_no_disagreement_without_enough_pairs_or_spread():
    assert review_exams(10, measures=_pairs({"A": 50.0}, n_quiet=1)).n_candidates == 0  # 2 pairs only
    flat = _pairs({}, n_quiet=8).assign(edv_ml=150.0)
    assert review_exams(10, measures=flat).n_candidates == 0


def test_more_reasons_rank_first_within_a_priority():
    status = pd.DataFrame({"exam_id": ["A", "B", "B"], "stage": ["infer", "ingest", "infer"],
                           "status": "failed", "qc_reason": ["x", "y", None]})
    ranked = review_exams(10, exam_status=status).exams
    assert list(ranked["exam_id"]) == ["B", "A"]
    assert ranked.loc[0, "reasons"] == "infer failed: (no reason given) | ingest failed: y"


def test_exams_table_is_used_when_there_is_no_status_table():
    exams = pd.DataFrame({"exam_id": ["A", "B"], "status": ["ok", "failed"], "qc_reason": [None, "no cine"]})
    ranked = review_exams(5, exams=exams)
    assert ranked.exams[["exam_id", "reasons"]].values.tolist() == [["B", "ingest failed: no cine"]]


def test_review_max_exams_default_is_in_the_schema():
    assert isinstance(default("report.review_max_exams"), int) and default("report.review_max_exams") > 0


def test_section_lists_exams_with_strips_and_notes(review_results, review_expected):
    index = build_report(review_results, review_max_exams=len(review_expected))
    page = index.read_text()
    assert '<h2 id="review">Exams to review</h2>' in page and 'href="#review"' in page
    section = page.split('<h2 id="review">')[1].split("<h2")[0]
    for exam, _ in review_expected:
        assert exam in section
    assert "X2: no image cache (cache/X2.npz), no strip." in section
    assert "E06: no inference masks found" in section
    imgs = re.findall(r'<img src="(review/[^"]+)"', section)
    assert sorted(imgs) == ["review/E06.png", "review/X1.png"]
    for src in imgs:
        img = plt.imread(index.parent / src)
        assert img.shape[0] > 100 and img[..., :3].std() > 0.05
    assert "could not be produced" not in page
    assert not any(e in page for e in ("PAT", "exam_0"))  # exam_id only


def test_strip_draws_both_sources_in_their_colours(review_results, tmp_path):
    from cmr_atlas.core.imagecache import load_exam_images, load_masks
    from cmr_atlas.report.overlay import COLOURS, overlay_strip, panels

    images = load_exam_images(review_results / "cache" / "X1.npz")
    masks = load_masks(review_results / "shards" / "s0000" / "masks" / "X1.npz")
    assert [p.title for p in panels(images, masks, "ED", 0)] == [
        "ED SAX base (0)", "ED SAX mid (1)", "ED SAX apex (2)", "ED 4CH"]
    pts = pd.read_parquet(review_results / "guide_points.parquet").query("exam_id == 'X1'")
    path = overlay_strip(images, masks, pts, {"ED": 0, "ES": 3}, tmp_path / "x1.png")
    rgb = plt.imread(path)[..., :3]
    for colour in COLOURS.values():
        want = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(rgb - want).max(axis=2) < 0.08).sum() > 20, colour  # contour pixels of that colour
    bare = overlay_strip(images, None, None, {"ED": 0}, tmp_path / "bare.png")
    assert bare.is_file()


@pytest.mark.parametrize("missing", ["everything", "tables_only"])
def test_section_tolerates_missing_inputs(tmp_path, missing):
    root = tmp_path / "r"
    root.mkdir()
    if missing == "tables_only":
        pd.DataFrame({"exam_id": ["A", "B"], "status": "ok", "qc_reason": None}).to_parquet(root / "exams.parquet")
    page = build_report(root).read_text()
    section = page.split('<h2 id="review">')[1].split("<h2")[0]
    assert ("Nothing to rank" in section) if missing == "everything" else ("No exam has" in section)


def test_phase_frames_fall_back_to_the_masks_then_frame_0(review_results):
    from cmr_atlas.core.imagecache import load_exam_images, load_masks
    from cmr_atlas.report.overlay import phase_frames, sax_slices

    images = load_exam_images(review_results / "cache" / "X1.npz")
    masks = load_masks(review_results / "shards" / "s0000" / "masks" / "X1.npz")
    assert phase_frames(images, masks, {"ed_frame": 1, "es_frame": 2}) == {"ED": 1, "ES": 2}
    assert phase_frames(images, masks, None) == {"ED": 0, "ES": 3}  # largest and smallest cavity
    assert phase_frames(images, None, None) == {"frame 0": 0}
    assert sax_slices(1) == [0] and sax_slices(2) == [0, 1] and sax_slices(12) == [0, 6, 11]
