"""Small clinical-like exams with every series type, written as DICOM, for the series-typing tests.

Headers follow the clinical protocol's conventions (bSSFP cine SAX + 2/3/4CH, stress and rest
perfusion with their AIF series, TI scout, LGE magnitude and PSIR, native and post-contrast T1
maps; see the clinical header conventions in docs/ingest.md "Series types") through
:mod:`cmr_atlas.synth.dicom_writer`; images are tiny noise so that exams write and read fast.
Descriptions are blank by default: typing must come from the header physics.  The truth of each
series (``kind``, series number) is returned, never written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth.dicom_writer import SeriesSpec
from cmr_atlas.synth.dicom_writer import write_exam as write_series
from tests.dicom import exams

BSSFP = {"ScanningSequence": "GR", "SequenceVariant": ["SK", "SS"], "SequenceName": "*tfi2d1_25",
         "RepetitionTime": 3.1, "EchoTime": 1.4, "FlipAngle": 60}
PERFUSION = {"ScanningSequence": "GR", "SequenceVariant": ["SK", "SP", "MP"], "SequenceName": "*tfl2d1",
             "RepetitionTime": 2.5, "EchoTime": 1.1, "FlipAngle": 12, "ContrastBolusAgent": "GADOBUTROL"}
SCOUT = {"ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP", "MP"], "SequenceName": "*tfl2d1",
         "RepetitionTime": 4.5, "EchoTime": 2.0, "FlipAngle": 10, "ContrastBolusAgent": "GADOBUTROL"}
LGE = {**SCOUT, "FlipAngle": 25, "ImageType": ["ORIGINAL", "PRIMARY", "M", "NORM"]}
PSIR = {**LGE, "ImageType": ["DERIVED", "PRIMARY", "R", "PSIR"], "PixelRepresentation": 1, "RescaleIntercept": 0}
T1MAP = {"ScanningSequence": "GR", "SequenceVariant": ["SK", "SS"], "SequenceName": "*MOLLI",
         "ImageType": ["DERIVED", "PRIMARY", "T1 MAP", "MOCO"]}


@dataclass
class ClinicalSpec:
    vendor: str = "SIEMENS"  # SIEMENS: one cine series per SAX slice; GE: one series for the stack
    n_sax: int = 6
    cine_frames: int = 6
    size: int = 24
    pixel_mm: float = 2.0
    perfusion_frames: int = 60  # heartbeats
    scout_frames: int = 30
    rest_rr_ms: float = 900.0
    stress_rr_ms: float = 720.0  # adenosine: +17 bpm
    lge_ti_ms: float = 300.0
    blank_descriptions: bool = True
    t1map_units: bool = True
    seed: int = 0
    study_uid: str | None = None
    patient_id: str = "PID-CLIN-1"


def _tm(seconds: float) -> str:
    """DICOM TM of seconds since midnight."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}{int(m):02d}{s:09.6f}"


def _noise(rng: np.random.Generator, n: int, shape: tuple[int, int], level: float, signed: bool = False) -> np.ndarray:
    img = rng.normal(level, 0.05 * abs(level) + 5, (n, *shape))
    return np.round(img).astype(np.int16) if signed else np.clip(np.round(img), 0, 4095).astype(np.uint16)


def _resampled(plane: SlicePlane, pixel_mm: float, size: int) -> SlicePlane:
    """The same plane centre and orientation with another matrix and pixel size."""
    return SlicePlane.centred(plane.centre_mm, plane.row_cosine, plane.col_cosine, (pixel_mm, pixel_mm),
                              (size, size), plane.thickness_mm)


def clinical_planes(spec: ClinicalSpec) -> dict[str, list[SlicePlane]]:
    """SAX (base to apex), lax_2ch, lax_4ch from tests/dicom/exams.py, and a lax_3ch between them."""
    es = exams.ExamSpec(n_slices=spec.n_sax, rows=spec.size, cols=spec.size, pixel_spacing=spec.pixel_mm)
    planes = exams.exam_planes(es)
    four, two = planes["lax_4ch"][0], planes["lax_2ch"][0]
    d3 = four.row_cosine + two.row_cosine  # the LVOT direction: between the 4CH and 2CH directions
    planes["lax_3ch"] = [exams._stored(SlicePlane.centred(four.centre_mm, d3 / np.linalg.norm(d3), four.col_cosine,
                                                          four.pixel_spacing_mm, four.shape, 6.0))]
    return planes


def _rwvm() -> Sequence:
    units, item = Dataset(), Dataset()
    units.CodeValue, units.CodingSchemeDesignator, units.CodeMeaning = "ms", "UCUM", "millisecond"
    item.LUTLabel = "T1"
    item.MeasurementUnitsCodeSequence = Sequence([units])
    item.RealWorldValueSlope, item.RealWorldValueIntercept = 1.0, 0.0
    return Sequence([item])


def _perfusion(rng, spec: ClinicalSpec, planes: list[SlicePlane], start_s: float, rr_ms: float, aif: bool
               ) -> tuple[list[np.ndarray], list[list[dict]]]:
    """Images and per-frame headers: one frame per heartbeat, fixed slice delay, 3 PD frames first."""
    images, frames = [], []
    for k, plane in enumerate(planes):
        images.append(_noise(rng, spec.perfusion_frames, plane.shape, 300.0))
        delay = 60.0 if aif else 100.0 + 150.0 * k
        frames.append([{"AcquisitionTime": _tm(start_s + f * rr_ms / 1000 + delay / 1000), "TriggerTime": delay,
                        "FlipAngle": 5 if f < 3 else 12} for f in range(spec.perfusion_frames)])
    return images, frames


def _series_list(spec: ClinicalSpec, rng: np.random.Generator) -> list[tuple[str, SeriesSpec]]:
    """(truth kind, series) in acquisition order; series numbers and times are set by the caller."""
    p = clinical_planes(spec)
    sax, mid = p["sax"], p["sax"][len(p["sax"]) // 2]
    size, px = spec.size, spec.pixel_mm
    cine = lambda pl: _noise(rng, spec.cine_frames, pl.shape, 400.0)  # noqa: E731
    loc = exams._localizer_planes(exams.ExamSpec(rows=size, cols=size, pixel_spacing=px))
    out = [("localizer", SeriesSpec("localizer", "localizer", 0, loc, [_noise(rng, 1, q.shape, 200.0) for q in loc],
                                    [0, 1, 2]))]
    for view in ("lax_2ch", "lax_3ch", "lax_4ch"):
        out.append(("cine", SeriesSpec(view, f"cine {view[4:]}", 0, p[view], [cine(p[view][0])], [0], dict(BSSFP))))
    if spec.vendor == "GE":
        out.append(("cine", SeriesSpec("sax", "cine sax", 0, sax, [cine(q) for q in sax], list(range(len(sax))),
                                       dict(BSSFP))))
    else:
        out += [("cine", SeriesSpec("sax", f"cine sax {k + 1}", 0, [q], [cine(q)], [k], dict(BSSFP)))
                for k, q in enumerate(sax)]
    t1 = _noise(rng, 1, mid.shape, 1000.0)
    units = {"RealWorldValueMappingSequence": _rwvm()} if spec.t1map_units else {}
    out.append(("t1map", SeriesSpec("sax", "T1 map native", 0, [mid], [t1], [len(sax) // 2], {**T1MAP, **units})))
    three = [sax[1], mid, sax[-2]]
    aif_plane = _resampled(sax[1], 2.4 * px, size // 2)
    for condition, rr in (("stress", spec.stress_rr_ms), ("rest", spec.rest_rr_ms)):
        start = 11 * 3600 + (0 if condition == "stress" else 15 * 60)
        ims, fr = _perfusion(rng, spec, three, start, rr, aif=False)
        out.append(("perfusion", SeriesSpec("sax", f"perf {condition}", 0, three, ims, [1, 2, 3], dict(PERFUSION), fr)))
        ims, fr = _perfusion(rng, spec, [aif_plane], start, rr, aif=True)
        out.append(("perfusion_aif", SeriesSpec("sax", f"perf aif {condition}", 0, [aif_plane], ims, [1],
                                                dict(PERFUSION), fr)))
    ti = np.linspace(90.0, 1300.0, spec.scout_frames)
    scout_frames = [[{"InversionTime": round(float(t), 1), "TriggerTime": round(float(t) - 20.0, 1)} for t in ti]]
    out.append(("ti_scout", SeriesSpec("sax", "TI scout", 0, [mid], [_noise(rng, spec.scout_frames, mid.shape, 200.0)],
                                       [len(sax) // 2], dict(SCOUT), scout_frames)))
    lax = [p["lax_2ch"][0], p["lax_3ch"][0], p["lax_4ch"][0]]
    for kind, headers, signed in (("lge", LGE, False), ("lge_psir", PSIR, True)):
        hdr = {**headers, "InversionTime": spec.lge_ti_ms}
        out.append((kind, SeriesSpec("sax", f"{kind} sax", 0, sax, [_noise(rng, 1, q.shape, 150.0, signed) for q in sax],
                                     list(range(len(sax))), hdr)))
        out.append((kind, SeriesSpec("lax_4ch", f"{kind} lax", 0, lax, [_noise(rng, 1, q.shape, 150.0, signed) for q in lax],
                                     [0, 0, 0], hdr)))
    t1 = _noise(rng, 1, mid.shape, 450.0)
    out.append(("t1map", SeriesSpec("sax", "T1 map post", 0, [mid], [t1], [len(sax) // 2],
                                    {**T1MAP, **units, "ContrastBolusAgent": "GADOBUTROL"})))
    return out


def write_clinical_exam(folder: str | Path, spec: ClinicalSpec | None = None) -> dict:
    """Write one clinical-like exam under ``folder``.

    Returns ``{"study_uid", "files", "series": [(series number, truth kind, description)]}``.
    """
    spec = spec or ClinicalSpec()
    rng = np.random.default_rng(spec.seed)
    study_uid = spec.study_uid or generate_uid()
    es = exams.ExamSpec(vendor=spec.vendor, patient_id=spec.patient_id, study_uid=study_uid)
    truth, specs = [], []
    for number, (kind, s) in enumerate(_series_list(spec, rng), start=1):
        description = "" if spec.blank_descriptions else s.description
        headers = {"SeriesTime": _tm(10 * 3600 + 60 * number), "MagneticFieldStrength": 1.5, **s.series_headers}
        if kind == "cine":
            headers["AcquisitionTime"] = _tm(10 * 3600 + 60 * number + 5)
        specs.append(replace(s, description=description, series_number=number, series_headers=headers))
        truth.append((number, kind, s.description))
    trigger = np.arange(spec.cine_frames) * spec.rest_rr_ms / spec.cine_frames
    vendor = exams.MANUFACTURER[spec.vendor]
    files = write_series(Path(folder), exams._header(es, study_uid), vendor, specs, trigger, spec.rest_rr_ms,
                         generate_uid(), rng)
    return {"study_uid": study_uid, "files": files, "series": truth}
