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
