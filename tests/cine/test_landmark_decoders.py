"""benchmarks/landmark_decoders.py: the sub-pixel decoders it compares find a Gaussian's centre,
and the decoding it swaps in keeps the shipped presence and confidence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from landmark_decoders import blob_centroid, decoding_with, log_quadratic, variant  # noqa: E402
from cmr_atlas.nets.heatmaps import decode_arrays  # noqa: E402


def _blob(r: float, c: float, sigma: float = 2.0, size: int = 32) -> np.ndarray:
    rr, cc = np.mgrid[0:size, 0:size]
    return 0.9 * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2))


@settings(max_examples=30, deadline=None)
@given(st.floats(8, 23), st.floats(8, 23))
def test_decoders_find_a_gaussians_centre(r: float, c: float):
    p = _blob(r, c)
    peak = np.unravel_index(int(np.argmax(p)), p.shape)
    assert np.allclose(log_quadratic(p, peak), (r, c), atol=1e-3)  # exact for a Gaussian
    assert np.allclose(blob_centroid(p, 0.5), (r, c), atol=0.15)  # the cut's pixels are whole


def test_variant_names():
    p = _blob(10.3, 12.6)
    assert np.allclose(variant("c30")(p, (10, 13)), blob_centroid(p, 0.3))
    with pytest.raises(SystemExit, match="unknown decoder"):
        variant("argmax")


def test_swapped_decoding_keeps_presence_and_confidence():
    probs = np.zeros((1, 3, 32, 32))
    probs[0, 1] = _blob(10.25, 20.5)
    probs[0, 2] = 0.001  # below the threshold: absent, whatever the decoder
    probs[0, 0] = 1 - probs[0, 1:].sum(0)
    rc, present, conf = decoding_with(log_quadratic, decode_arrays)(probs, 0.01)
    ref_rc, ref_present, ref_conf = decode_arrays(probs, 0.01)
    assert present.tolist() == ref_present.tolist() == [[True, False]]
    assert np.array_equal(conf, ref_conf)
    assert np.allclose(rc[0, 0], (10.25, 20.5), atol=1e-3) and np.isnan(rc[0, 1]).all()
