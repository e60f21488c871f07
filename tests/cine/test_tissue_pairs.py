"""Which LGE series are read together (cmr_atlas.cine.tissue.landmarks.reconstruction_pairs): the
magnitude and PSIR of one acquisition pair one to one by planes, pixel grid and AcquisitionTime;
anything else is read alone."""

import numpy as np

from cmr_atlas.cine.tissue.landmarks import reconstruction_pairs, same_acquisition
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.seriescache import SeriesImages

N, SP = 64, 1.5


def _plane(z: float, dx: float = 0.0, n: int = N) -> SlicePlane:
    return SlicePlane([-(n - 1) / 2 * SP + dx, -(n - 1) / 2 * SP, z], [1, 0, 0], [0, 1, 0], (SP, SP), (n, n))


def _series(index: int, kind: str, zs=(0.0, 8.0), times=(100.0, 130.0), dx: float = 0.0, n: int = N) -> SeriesImages:
    p = len(zs)
    nan = np.full((p, 1), np.nan)
    t = np.asarray(times, float)[:, None]
    return SeriesImages("e1", index, index + 1, kind, "lge", None, True, np.zeros((p, 1, n, n), np.float32),
                        np.ones(p, int), [_plane(z, dx, n) for z in zs], t, nan, nan, nan)


def test_magnitude_and_psir_of_one_acquisition_pair():
    mag, psir = _series(3, "lge"), _series(4, "lge_psir")
    assert same_acquisition(mag, psir)
    pairs = reconstruction_pairs([mag, psir])
    assert pairs[3] is psir and pairs[4] is mag


def test_other_acquisitions_are_read_alone():
    mag = _series(3, "lge")
    later = _series(4, "lge_psir", times=(400.0, 430.0))  # a repeat on the same planes, minutes later
    moved = _series(5, "lge_psir", dx=6.0)  # the slices moved in plane
    other_slices = _series(6, "lge_psir", zs=(0.0, 8.0, 16.0), times=(100.0, 130.0, 160.0))
    coarser = _series(7, "lge_psir", n=N // 2)
    for other in (later, moved, other_slices, coarser):
        assert not same_acquisition(mag, other)
        assert reconstruction_pairs([mag, other]) == {}
    # two magnitudes never pair with each other, nor T1 maps with anything
    assert reconstruction_pairs([mag, _series(8, "lge")]) == {}
    assert reconstruction_pairs([_series(9, "t1map"), _series(10, "t1map")]) == {}


def test_ambiguous_candidates_are_read_alone():
    # without AcquisitionTime two PSIR series on the magnitude's planes cannot be told apart
    untimed = dict(times=(np.nan, np.nan))
    mag, a, b = _series(3, "lge", **untimed), _series(4, "lge_psir", **untimed), _series(5, "lge_psir", **untimed)
    assert reconstruction_pairs([mag, a]) == {3: a, 4: mag}
    assert reconstruction_pairs([mag, a, b]) == {}
