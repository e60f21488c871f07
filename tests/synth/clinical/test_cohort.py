"""The clinical protocol end to end: ``cmr-atlas synth --protocol clinical`` writes DICOM whose
series are the truth's, the same bytes for the same seed, and truth tables on their schemas."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest

from cmr_atlas.core.tables import read_table
from cmr_atlas.synth.clinical import cohort as C

pytestmark = pytest.mark.slow


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_written_series_are_the_truths(clinical_synth_cohort):
    series = read_table(clinical_synth_cohort / "truth" / "series.parquet")
    written: dict[int, set] = {}
    for path in (clinical_synth_cohort / "dicom").rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            written.setdefault(int(ds.SeriesNumber), set()).add(
                (tuple(round(float(v), 3) for v in ds.ImagePositionPatient), ds.InstanceNumber))
    assert sorted(written) == sorted(series.series_number)
    for row in series.itertuples():
        assert len(written[row.series_number]) == row.n_planes * row.n_frames
    assert set(series.kind) == {"localizer", "cine", "perfusion", "perfusion_aif", "ti_scout", "lge",
                                "lge_psir", "t1map_native", "t1map_post"}
    assert set(series[series.kind == "cine"].view) == {"sax", "lax_2ch", "lax_3ch", "lax_4ch"}
    volumes = read_table(clinical_synth_cohort / "truth" / "volumes.parquet")
    assert len(volumes) == series[(series.kind == "cine")].n_frames.iloc[0] and set(volumes.phase.dropna()) == {"ED", "ES"}


def test_truth_tables_are_complete(clinical_synth_cohort):
    truth = clinical_synth_cohort / "truth"
    for schema in C.truth_schemas():
        df = read_table(truth / f"{schema.name}.parquet", schema)
        assert schema.name == "tissue_pixels" or len(df), schema.name  # scar only in some subjects
    contours = read_table(truth / "contours.parquet")
    assert {"cine_ssfp", "perfusion", "lge", "t1map", "ti_scout"} <= set(contours.sequence)
    assert {"truth", "obs1", "obs2"} <= set(contours.observer)
    observed = contours[contours.observer == "obs1"]
    assert {"cine_ssfp", "perfusion", "lge", "t1map"} <= set(observed.sequence)  # observers on every kind
    landmarks = read_table(truth / "landmarks.parquet")
    assert {"mv_inferolateral", "lvot_anteroseptal"} <= set(landmarks.landmark)
    assert len(read_table(truth / "segments.parquet")) == 16


def test_same_seed_same_bytes(clinical_synth_cohort, clinical_seed, tmp_path):
    C.generate_cohort(tmp_path, 1, clinical_seed, observers=2)
    assert _digests(tmp_path / "dicom") == _digests(clinical_synth_cohort / "dicom")
    for name in ("series", "segments", "ti_scout", "perfusion_curves"):
        a = read_table(tmp_path / "truth" / f"{name}.parquet")
        b = read_table(clinical_synth_cohort / "truth" / f"{name}.parquet")
        assert a.equals(b), name
