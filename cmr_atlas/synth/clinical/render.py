"""Image formation shared by the clinical series: where the tissues are in a plane, and how a map of
signal values becomes a stored magnitude (or signed) image.

A renderer (cine, perfusion, scout, LGE, T1 map) computes each tissue's signal from its own
sequence physics (:mod:`cmr_atlas.synth.physics`), assigns it per sample with
:meth:`PlaneSampler.labels` (plus, for myocardium, per AHA segment or per scar/fibrosis region from
:meth:`PlaneSampler.myocardial_regions`), averages over the through-plane samples (partial volume)
and calls :func:`form_image` (k-space support, surface-coil field, complex Gaussian noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.clinical.protocol import aha_segment_local
from cmr_atlas.synth.imaging import coil_sensitivity, kspace_window
from cmr_atlas.synth.physics import Relaxation, relaxation

# Relaxation tissue (cmr_atlas.synth.physics.RELAXATION) of each anatomy class.
TISSUE_OF_CLASS: dict[int, str] = {
    an.AIR: "air", an.LUNG: "lung", an.FAT: "fat", an.MUSCLE: "muscle", an.LIVER: "liver", an.BONE: "bone",
    an.SOFT: "soft", an.LV_BLOOD: "blood", an.LV_MYO: "myocardium", an.RV_BLOOD: "blood",
    an.RV_MYO: "myocardium", an.OTHER_BLOOD: "blood", an.EPI_FAT: "fat",
}
HEART_BOX_MM = 100.0  # half-size of the region around the heart where heart labels are evaluated


def class_table(field_t: float, signal: Callable[[Relaxation], float]) -> np.ndarray:
    """Per anatomy class, ``signal(relaxation of its tissue at field_t)``: index it with labels."""
    return np.array([signal(relaxation(field_t, TISSUE_OF_CLASS[c])) for c in range(an.N_TISSUES)])


def through_plane_depths_mm(thickness_mm: float) -> np.ndarray:
    """Three samples across the slice profile (centre and +-1/3 of the thickness)."""
    return np.array([-thickness_mm / 3.0, 0.0, thickness_mm / 3.0])


@dataclass
class PlaneSampler:
    """Tissue classes of one plane with the heart displaced by ``shift_mm``; the static thorax and
    the heart-local coordinates are computed once, heart labels per activation ``w``."""

    heart: an.Heart
    plane: SlicePlane
    shift_mm: np.ndarray
    depths_mm: np.ndarray | None = None
    background: np.ndarray = field(init=False)  # (R, C, D) anatomy classes of the thorax
    box: tuple[int, int, int, int] = field(init=False)  # r0, r1, c0, c1 of the heart region
    local: np.ndarray | None = field(init=False)  # (r1-r0, c1-c0, D, 3) heart-local mm
    _polar: tuple | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.depths_mm is None:
            self.depths_mm = through_plane_depths_mm(self.plane.thickness_mm)
        rows, cols = self.plane.shape
        grid = self.plane.pixel_grid_mm()
        pts = grid[:, :, None, :] + self.depths_mm[None, None, :, None] * self.plane.normal
        anat = pts - self.shift_mm  # the heart is displaced by +shift: sample the anatomy at p - shift
        self.background = self.heart.background_labels(anat)
        centre = self.heart.to_patient(np.array([0.0, 0.0, 0.55 * self.heart.ed.length_mm])) + self.shift_mm
        rc, _ = self.plane.patient_to_pixel(centre)
        rad = HEART_BOX_MM / np.asarray(self.plane.pixel_spacing_mm)
        r0, c0 = np.maximum(np.floor(rc - rad).astype(int), 0)
        r1, c1 = np.minimum(np.ceil(rc + rad).astype(int) + 1, [rows, cols])
        self.box = (int(r0), int(r1), int(c0), int(c1))
        if r1 > r0 and c1 > c0:
            self.local = self.heart.to_local(anat[r0:r1, c0:c1])
            self._polar = an.polar_terms(self.local, self.heart.ed.harmonics)
        else:
            self.local, self._polar = None, None

    def labels(self, w: float) -> np.ndarray:
        """(R, C, D) anatomy classes (:mod:`cmr_atlas.synth.anatomy`) at activation ``w``."""
        out = self.background.copy()
        if self.local is not None:
            r0, r1, c0, c1 = self.box
            hl = self.heart.heart_labels_local(self.local, w, self._polar)
            out[r0:r1, c0:c1] = np.where(hl >= 0, hl, out[r0:r1, c0:c1])
        return out

    def myocardial_regions(self, w: float) -> np.ndarray:
        """(R, C, D) AHA segment 1-17 of every sample (meaningful where the label is LV_MYO), 0
        outside the heart region."""
        out = np.zeros(self.background.shape, dtype=np.int8)
        if self.local is not None:
            r0, r1, c0, c1 = self.box
            out[r0:r1, c0:c1] = aha_segment_local(self.heart, self.local, w)
        return out

    def wall_depth(self, w: float) -> np.ndarray:
        """(R, C, D) fractional depth across the LV wall, 0 at the endocardium, 1 at the
        epicardium, along the local radius (for subendocardial scar and mid-wall fibrosis);
        NaN outside the heart region."""
        out = np.full(self.background.shape, np.nan)
        if self.local is not None:
            r0, r1, c0, c1 = self.box
            ph = self.heart.phase(w)
            rho, phi, g = self._polar
            z = self.local[..., 2]
            r_in = ph.r_endo(np.clip(z, 0, ph.length_mm), phi, g)
            r_out = ph.r_epi(np.clip(z, -ph.epi_apex_mm, ph.length_mm), phi, g)
            out[r0:r1, c0:c1] = np.clip((rho - r_in) / np.maximum(r_out - r_in, 1e-6), 0.0, 1.0)
        return out


def form_image(signal: np.ndarray, plane: SlicePlane, coil: dict, noise_sd: float, rng: np.random.Generator,
               kspace_fraction: float = 0.8, signed: bool = False) -> np.ndarray:
    """Acquire a (R, C) map of true signal (partial volume already averaged): coil field, finite
    k-space support (blur, mild Gibbs), complex Gaussian noise of SD ``noise_sd`` per channel.

    Returns the magnitude (Rician noise floor), or with ``signed`` the real part after removing the
    background phase, as a phase-sensitive reconstruction does (Gaussian noise, signed values).
    """
    img = np.asarray(signal, dtype=float) * coil_sensitivity(plane.pixel_grid_mm(), coil)
    k = np.fft.fft2(img) * kspace_window(plane.shape, kspace_fraction)
    cplx = np.fft.ifft2(k)
    cplx = cplx + rng.normal(0, noise_sd, cplx.shape) + 1j * rng.normal(0, noise_sd, cplx.shape)
    return cplx.real if signed else np.abs(cplx)


def quantise(img: np.ndarray, signed: bool = False) -> np.ndarray:
    """Stored 12-bit integers: uint16 0..4095, or int16 -4096..4095 for signed (PSIR) images."""
    if signed:
        return np.clip(np.rint(img), -4096, 4095).astype(np.int16)
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


# --- cine / LGE / T1-map helpers
from cmr_atlas.synth.clinical.physiology import post_contrast_t1_ms  # noqa: E402
from cmr_atlas.synth.physics import r1_with_contrast  # noqa: E402
import scipy.fft  # noqa: E402
import dataclasses  # noqa: E402

# Extracellular volume fraction of the background tissues, for their T1 after contrast (the
# two-space model of :func:`cmr_atlas.synth.clinical.physiology.post_contrast_t1_ms`); approximate
# literature values (skeletal muscle 0.10-0.15, liver about 0.28 for an extracellular agent, fat
# and marrow small).  Myocardium takes the subject's ECV per AHA segment, blood its own curve.
BACKGROUND_ECV: dict[str, float] = {"fat": 0.06, "muscle": 0.12, "liver": 0.28, "lung": 0.30, "soft": 0.20,
                                    "bone": 0.06, "air": 0.0}
DIASTASIS_FRAC = 0.72  # fraction of the R-R in mid-diastole, where single-phase images are triggered


def post_contrast_class_t1(field_t: float, blood_mmol_l: float, hematocrit: float, myo_ecv: float,
                           myo_native_t1_ms: float) -> np.ndarray:
    """(N_TISSUES,) T1 in ms of every anatomy class with whole-blood gadolinium ``blood_mmol_l``
    (myocardium at ECV ``myo_ecv``; per-segment values are assigned by the renderer)."""
    out = np.empty(an.N_TISSUES)
    for c in range(an.N_TISSUES):
        tissue = TISSUE_OF_CLASS[c]
        native = relaxation(field_t, tissue).t1_ms
        if tissue == "blood":
            out[c] = 1000.0 / r1_with_contrast(native, blood_mmol_l, field_t)
        elif tissue == "myocardium":
            out[c] = post_contrast_t1_ms(myo_native_t1_ms, myo_ecv, hematocrit, blood_mmol_l, field_t)
        else:
            out[c] = post_contrast_t1_ms(native, BACKGROUND_ECV[tissue], hematocrit, blood_mmol_l, field_t)
    return out


def cavity_depth_mm(sampler: PlaneSampler, w: float) -> np.ndarray | None:
    """(r1-r0, c1-c0, D) distance in mm from the LV endocardium into the cavity over the sampler's
    heart box (radially, or above the endocardial apex, whichever is smaller; <= 0 outside the
    cavity), None without a heart region.  Locates the trabecular layer inside the compact wall."""
    if sampler.local is None:
        return None
    ph = sampler.heart.phase(w)
    rho, phi, g = sampler._polar
    z = sampler.local[..., 2]
    return np.minimum(ph.r_endo(np.clip(z, 0, ph.length_mm), phi, g) - rho, z)


def box_labels(sampler: PlaneSampler, w: float) -> np.ndarray | None:
    """(r1-r0, c1-c0, D) anatomy classes over the heart box only (:meth:`PlaneSampler.labels`
    without copying the static rest of the plane, for renderers that precompute it), or None."""
    if sampler.local is None:
        return None
    r0, r1, c0, c1 = sampler.box
    hl = sampler.heart.heart_labels_local(sampler.local, w, sampler._polar)
    return np.where(hl >= 0, hl, sampler.background[r0:r1, c0:c1])


def sample_angle(sampler: PlaneSampler) -> np.ndarray | None:
    """(r1-r0, c1-c0, D) local angle ``phi`` (from the septum) of the heart-box samples, or None."""
    return None if sampler._polar is None else sampler._polar[1]


def myocardial_t1_post_ms(physiology, field_t: float, ecv, blood_mmol_l: float):
    """Post-contrast T1 of myocardium at ``ecv`` from the subject's native myocardial T1."""
    return post_contrast_t1_ms(physiology.native_t1_myo_ms, ecv, physiology.hematocrit, blood_mmol_l, field_t)


def segment_values(regions: np.ndarray, per_segment: np.ndarray, default: float) -> np.ndarray:
    """Per-sample value from an AHA region map (1-17; 0 outside): ``per_segment[s - 1]`` for
    segments 1-16, ``default`` elsewhere (apex cap 17 and outside)."""
    table = np.concatenate([[default], np.asarray(per_segment, float), [default]])
    return table[np.clip(regions, 0, 17)]


def myocardial_tissue(sampler: PlaneSampler, w: float, physiology, labels: np.ndarray,
                      regions: np.ndarray) -> np.ndarray:
    """(R, C, D) 0 remote myocardium, 1 scar, 2 mid-wall fibrosis, -1 not LV myocardium.

    Scar runs from the endocardium to the subject's transmurality of the wall in its scar segments
    (infarcts grow from the subendocardium, the wavefront phenomenon); fibrosis occupies wall depth
    0.3-0.7 in the fibrosis segments (the mid-wall stripe of non-ischaemic cardiomyopathy)."""
    out = np.where(labels == an.LV_MYO, 0, -1).astype(np.int8)
    if not len(physiology.scar_segments) and not len(physiology.fibrosis_segments):
        return out
    depth = sampler.wall_depth(w)
    myo = labels == an.LV_MYO
    out[myo & np.isin(regions, physiology.scar_segments) & (depth <= physiology.scar_transmurality)] = 1
    out[myo & np.isin(regions, physiology.fibrosis_segments) & (depth >= 0.3) & (depth <= 0.7)] = 2
    return out


def remote_ecv(physiology) -> float:
    """ECV of the subject's myocardium outside scar and fibrosis (median of the other segments)."""
    sick = set(physiology.scar_segments) | set(physiology.fibrosis_segments)
    return float(np.median([e for s, e in enumerate(physiology.ecv, 1) if s not in sick]))


def myocardial_ecv(sampler: PlaneSampler, w: float, physiology, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, C, D) ECV of every LV-myocardium sample (NaN elsewhere) and :func:`myocardial_tissue`.

    Segments keep their ECV where healthy; in scar and fibrosis segments the lesion carries the
    segment's ECV (the truth's per-segment value) and the rest of the wall the remote ECV."""
    regions = sampler.myocardial_regions(w)
    tissue = myocardial_tissue(sampler, w, physiology, labels, regions)
    remote = remote_ecv(physiology)
    sick = np.isin(np.arange(1, len(physiology.ecv) + 1),
                   list(physiology.scar_segments) + list(physiology.fibrosis_segments))
    healthy = np.where(sick, remote, physiology.ecv)
    ecv = np.where(tissue > 0, segment_values(regions, physiology.ecv, remote),
                   segment_values(regions, healthy, remote))
    return np.where(tissue >= 0, ecv, np.nan), tissue


def mostly(tissue: np.ndarray, kind: int) -> np.ndarray:
    """(R, C) pixels whose myocardial samples are mostly ``kind`` (:func:`myocardial_tissue`)."""
    n_myo = (tissue >= 0).sum(axis=-1)
    return (n_myo > 0) & ((tissue == kind).sum(axis=-1) * 2 > n_myo)


def acquire(signals: np.ndarray, plane: SlicePlane, coil: dict, noise_sd: float, rng: np.random.Generator,
            kspace_fraction: float = 0.8, motion_mm: np.ndarray | None = None) -> np.ndarray:
    """Complex images (T, R, C) of a stack of one plane, in single precision, as :func:`form_image`
    forms one (coil field, finite k-space support, complex Gaussian noise) with the background
    phase already removed: magnitude and phase-sensitive reconstructions come from the same data.

    ``motion_mm`` (R, 3): rigid displacement of the anatomy when each phase-encode line (row of
    k-space, in ``fftfreq`` order) was acquired, as in a breath-hold the patient did not keep:
    a linear phase per line (:func:`motion_phase`), i.e. blur and ghosts along phase-encode."""
    sens = coil_sensitivity(plane.pixel_grid_mm(), coil).astype(np.float32)
    img = np.asarray(signals, dtype=np.float32) * sens
    k = scipy.fft.fft2(img, axes=(-2, -1)) * kspace_window(plane.shape, kspace_fraction).astype(np.float32)
    if motion_mm is not None:
        k *= motion_phase(plane, motion_mm)
    cplx = scipy.fft.ifft2(k, axes=(-2, -1), overwrite_x=True)
    noise = rng.standard_normal((2,) + cplx.shape, dtype=np.float32)
    noise *= np.float32(noise_sd)
    cplx.real += noise[0]
    cplx.imag += noise[1]
    return cplx


def from_centre_line(motion_mm: np.ndarray) -> np.ndarray:
    """Per-line displacements ``motion_mm`` (R, 3), ``fftfreq`` order, relative to the k-space
    centre line's (row 0: ky = 0), whose place an image takes and the truth keeps."""
    m = np.asarray(motion_mm, float)
    return m - m[0]


def motion_phase(plane: SlicePlane, motion_mm: np.ndarray) -> np.ndarray:
    """(R, C) k-space phase of per-line displacements ``motion_mm`` (R, 3) in patient mm (the
    in-plane part; relative to the k-space centre line, whose position the image takes)."""
    rows, cols = plane.shape
    d = from_centre_line(motion_mm)
    d_col = (d @ plane.row_cosine / plane.pixel_spacing_mm[1])[:, None]
    d_row = (d @ plane.col_cosine / plane.pixel_spacing_mm[0])[:, None]
    ky = np.fft.fftfreq(rows)[:, None]  # cycles per pixel
    kx = np.fft.fftfreq(cols)[None, :]
    return np.exp(-2j * np.pi * (ky * d_row + kx * d_col)).astype(np.complex64)


def form_images(signals: np.ndarray, plane: SlicePlane, coil: dict, noise_sd: float, rng: np.random.Generator,
                kspace_fraction: float = 0.8, signed: bool = False, motion_mm: np.ndarray | None = None) -> np.ndarray:
    """:func:`form_image` of a stack (T, R, C) of one plane (see :func:`acquire`)."""
    cplx = acquire(signals, plane, coil, noise_sd, rng, kspace_fraction, motion_mm)
    return cplx.real if signed else np.abs(cplx)


def kspace_blur(img: np.ndarray, plane: SlicePlane, kspace_fraction: float) -> np.ndarray:
    """A map (R, C) seen through the acquired k-space support (in-plane partial volume), no noise."""
    return scipy.fft.ifft2(scipy.fft.fft2(img) * kspace_window(plane.shape, kspace_fraction)).real


class PhaseCachedHeart(an.Heart):
    """The same heart, with :meth:`Heart.phase` memoised per activation: a renderer asks for the
    geometry of one activation a dozen times per frame (labels, wall depth, every truth contour
    and landmark), and each call integrates the shape anew.  Values are identical."""

    def phase(self, w: float) -> an.LVPhase:
        cache = self.__dict__.setdefault("_phase_cache", {})
        key = float(w)
        if key not in cache:
            cache[key] = super().phase(key)
        return cache[key]


def phase_cached(heart: an.Heart) -> PhaseCachedHeart:
    """A :class:`PhaseCachedHeart` copy of ``heart`` (its own cache, the original untouched)."""
    if isinstance(heart, PhaseCachedHeart):
        return heart
    return PhaseCachedHeart(**{f.name: getattr(heart, f.name) for f in dataclasses.fields(heart) if f.init})
