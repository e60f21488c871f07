"""The modern clinical exam shared by every series renderer: who is scanned, on which scanner, and
where the slices are.

One :class:`ClinicalExamContext` per exam carries the subject, the heart (anatomy and cycle, the
same as the legacy protocol's), the physiology (MBF, T1, ECV, scar), the field strength and vendor,
and the planned geometry: a bSSFP SAX stack (8 mm slices, 2 mm gap, 8-14 slices, base to apex)
and the 2-, 3- and 4-chamber long-axis planes.  The perfusion, TI-scout, LGE and T1-map renderers
take their slices from that plan (basal/mid/apical SAX levels), so every series of an exam shows
the same heart at the same place, as on a scanner after one planning.

A renderer returns :class:`RenderedSeries` (images as stored plus DICOM header values per series
and per frame) and its truth rows; :mod:`.cohort` writes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cmr_atlas.core.aha import aha_segment
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.clinical.physiology import Physiology
from cmr_atlas.synth.imaging import in_plane_axes, small_rotation, unit

SAX_THICKNESS_MM = 8.0
SAX_GAP_MM = 2.0
SAX_SLICES = (8, 14)  # inclusive range of the stack size

# Scanners of the clinical era: (Manufacturer as written, models at 1.5 T, models at 3 T).
VENDORS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "SIEMENS": (("Avanto", "Aera", "Sola"), ("Skyra", "Prisma", "Vida")),
    "GE MEDICAL SYSTEMS": (("Signa Artist", "Optima MR450w"), ("Signa Premier", "Discovery MR750")),
    "Philips": (("Ingenia", "Achieva"), ("Ingenia", "Achieva dStream")),
}
IMAGING_FREQUENCY_MHZ = {1.5: 63.87, 3.0: 127.74}


@dataclass
class ClinicalGeometry:
    """Planned planes of one clinical exam (patient coordinates, mm)."""

    sax_planes: list[SlicePlane]  # base (0) to apex
    lax_planes: dict[str, SlicePlane]  # lax_2ch, lax_3ch, lax_4ch
    pixel_spacing_mm: float

    def sax_level(self, level: str, fractions: dict[str, float] | None = None) -> int:
        """Index of the stack slice nearest a basal (1/6), mid (1/2) or apical (5/6) level of the
        stack, or at ``fractions[level]`` of it."""
        frac = (fractions or {"basal": 1 / 6, "mid": 1 / 2, "apical": 5 / 6})[level]
        return int(round(frac * (len(self.sax_planes) - 1)))


# Weinmann et al., Physiol Chem Phys Med NMR 1984 (Gd-DTPA plasma washout, the constants Tofts &
# Kermode, MRM 1991 use): C_plasma(t) = D (a1 exp(-m1 t) + a2 exp(-m2 t)), D in mmol/kg, t in min.
WEINMANN_A_KG_PER_L = (3.99, 4.78)
WEINMANN_M_PER_MIN = (0.144, 0.0111)


@dataclass(frozen=True)
class Timeline:
    """When things happen in one exam, in minutes from the stress bolus (Kellman 2017 protocol:
    0.05 mmol/kg at stress, 0.05 at rest, a top-up before the late images)."""

    injections: tuple[tuple[float, float], ...]  # (minute, dose mmol/kg)
    scout_min: float
    lge_min: float
    t1_post_min: float

    def blood_concentration_mmol_l(self, t_min, hematocrit: float):
        """Whole-blood Gd concentration from every earlier injection (plasma x (1 - Hct))."""
        t = np.asarray(t_min, float)
        c = np.zeros(t.shape)
        for t0, dose in self.injections:
            dt = t - t0
            part = sum(a * np.exp(-m * np.clip(dt, 0, None)) for a, m in zip(WEINMANN_A_KG_PER_L, WEINMANN_M_PER_MIN))
            c = c + np.where(dt > 0, dose * part, 0.0)
        return c * (1.0 - hematocrit)


def draw_timeline(rng: np.random.Generator) -> Timeline:
    rest = float(rng.uniform(12.0, 20.0))
    top_up = float(rng.choice([0.0, 0.05, 0.1], p=[0.3, 0.5, 0.2]))
    scout = rest + float(rng.uniform(8.0, 12.0))
    return Timeline(injections=((0.0, 0.05), (rest, 0.05)) + (((rest + 1.0, top_up),) if top_up else ()),
                    scout_min=scout, lge_min=scout + float(rng.uniform(1.5, 6.0)),
                    t1_post_min=scout + float(rng.uniform(8.0, 12.0)))


@dataclass
class ClinicalExamContext:
    """Everything the series renderers share about one exam."""

    label: str
    subject: dict
    heart: an.Heart
    physiology: Physiology
    field_t: float
    vendor: str  # Manufacturer as written
    model: str
    geometry: ClinicalGeometry
    timeline: Timeline
    coil: dict  # surface-coil receive field (:func:`cmr_atlas.synth.imaging.coil_sensitivity`)

    def blood_gd_mmol_l(self, t_min):
        """Whole-blood gadolinium ``t_min`` after the stress bolus for this subject (washout of every
        injection, hematocrit, and the physiology's scale): the one source for every late series."""
        ph = self.physiology
        return self.timeline.blood_concentration_mmol_l(t_min, ph.hematocrit) * ph.blood_gd_scale

    def scanner_headers(self) -> dict:
        """Series-level DICOM values every clinical series shares."""
        return {"Manufacturer": self.vendor, "ManufacturerModelName": self.model,
                "MagneticFieldStrength": self.field_t, "ImagingFrequency": IMAGING_FREQUENCY_MHZ[self.field_t]}


@dataclass
class RenderedSeries:
    """One series as a renderer made it; written by :mod:`.cohort` through the DICOM writer.

    ``kind`` is the truth (cine, perfusion, perfusion_aif, ti_scout, lge, lge_psir, t1map_native,
    t1map_post), never written as such: ingest has to tell series apart by their headers.
    """

    kind: str
    sequence: str | None  # cmr_atlas.core.vocab.SEQUENCES (None: localizer)
    view: str | None  # sax, lax_2ch, lax_3ch, lax_4ch (None: localizer)
    description: str
    start_min: float  # acquisition start, minutes after the stress bolus (cine and native T1: < 0)
    planes: list[SlicePlane]
    slice_indices: list[int]  # index into the exam's SAX stack (0 for a long-axis plane)
    images: list[np.ndarray]  # per plane (T, R, C), stored integers
    series_headers: dict = field(default_factory=dict)
    frame_headers: list[list[dict]] = field(default_factory=list)  # [plane][frame] -> {keyword: value}


@dataclass
class RenderResult:
    """A renderer's output: series to write and truth tables (by truth table name)."""

    series: list[RenderedSeries] = field(default_factory=list)
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)


def plan_geometry(rng: np.random.Generator, heart: an.Heart) -> ClinicalGeometry:
    """SAX stack perpendicular to an imperfectly planned long axis, and the three LAX planes."""
    ed = heart.ed
    e1, e2, e3 = heart.frame.T
    spacing = float(np.clip(rng.normal(1.4, 0.15), 1.1, 1.9))
    rows, cols = (192, 192) if rng.random() < 0.5 else (208, 256)
    n_sax = unit(small_rotation(rng, 3.0) @ e3)
    row, col = in_plane_axes(n_sax, rng, 15.0)
    pitch = SAX_THICKNESS_MM + SAX_GAP_MM
    first = ed.length_mm + rng.uniform(-2.0, 6.0)
    n_slices = int(np.clip(np.ceil((first + ed.epi_apex_mm) / pitch) + 1, *SAX_SLICES))
    fov = rng.normal(0, 6.0, 2)
    base = heart.origin_mm + first * e3 + fov[0] * row + fov[1] * col
    sax = [SlicePlane.centred(base - k * pitch * n_sax, row, col, (spacing, spacing), (rows, cols), SAX_THICKNESS_MM)
           for k in range(n_slices)]
    lv_centre = heart.origin_mm + 0.5 * ed.length_mm * e3
    lax = {}
    for view, normal in (("lax_4ch", e2), ("lax_2ch", e1), ("lax_3ch", three_chamber_normal(heart))):
        nrm = unit(small_rotation(rng, 3.0) @ normal)
        r, c = in_plane_axes(nrm, rng, 20.0)
        centre = lv_centre + 0.15 * ed.length_mm * e3 + rng.normal(0, 5.0) * r + rng.normal(0, 5.0) * c
        lax[view] = SlicePlane.centred(centre, r, c, (spacing, spacing), (rows, cols), SAX_THICKNESS_MM)
    return ClinicalGeometry(sax, lax, spacing)


def three_chamber_normal(heart: an.Heart) -> np.ndarray:
    """Normal of the 3-chamber (LVOT) plane: it holds the long axis and the direction from the LV
    axis to the aortic root (anterior-septal of the mitral valve in :meth:`Heart.heart_labels_local`)."""
    ao_local = heart.aortic_root_local(heart.ed) * np.array([1.0, 1.0, 0.0])
    d = unit(heart.frame @ ao_local)
    return unit(np.cross(heart.frame[:, 2], d))


def aha_segment_local(heart: an.Heart, local: np.ndarray, w: float) -> np.ndarray:
    """AHA segment (1-17) of points given in the heart's local frame at activation ``w``.

    Depth is measured from the base plane of that phase; angles from the septal centre (``e1``)
    towards the anterior wall (``+e2``, :mod:`cmr_atlas.synth.anatomy`), the convention of
    :func:`cmr_atlas.core.aha.aha_segment`.
    """
    ph = heart.phase(w)
    depth = np.clip((ph.length_mm - local[..., 2]) / ph.length_mm, 0.0, 1.0)
    phi = np.degrees(np.arctan2(local[..., 1], local[..., 0]))
    return aha_segment(depth, phi)


def draw_scanner(rng: np.random.Generator) -> tuple[float, str, str]:
    """Field strength (T), Manufacturer and model of one clinical exam."""
    field_t = 3.0 if rng.random() < 0.4 else 1.5
    vendor = str(rng.choice(list(VENDORS), p=[0.5, 0.3, 0.2]))
    models = VENDORS[vendor][field_t == 3.0]
    return field_t, vendor, str(models[int(rng.integers(len(models)))])


# --- cine / LGE / T1-map helpers
STRESS_BOLUS_CLOCK_S = 10 * 3600  # the stress bolus at 10:00 (as cohort's SeriesTime assumes)
CONTRAST_AGENT = "GADOBUTROL"  # ContrastBolusAgent of every post-contrast series


def acquisition_time(minutes: float) -> str:
    """AcquisitionTime (HHMMSS.ffffff) ``minutes`` after the stress bolus."""
    us = int(round((STRESS_BOLUS_CLOCK_S + minutes * 60.0) * 1e6))
    s, frac = divmod(us, 1_000_000)
    return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}.{frac:06d}"
