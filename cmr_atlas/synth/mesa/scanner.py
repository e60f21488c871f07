"""Legacy 1.5 T gradient-echo cine acquisition of a synthetic heart.

Planning follows the MESA protocol: a SAX stack of 10-12 slices, 6 mm thick with a 4 mm gap,
planned from base to apex perpendicular to the (imperfectly estimated) long axis; one 2-chamber
and one 4-chamber slice through the long axis; 20-30 frames per R-R; 256x160 (some 192x160)
matrix with 1.4-2.5 mm pixels.  Each slice is its own breath-hold, so the heart is displaced by a
per-slice vector (:mod:`.calibration` figures), the same for all frames of that slice.

Rendering: tissue classes are sampled at three depths across the slice thickness (through-plane
partial volume), mapped to gradient-echo intensities (bright blood, grey myocardium, bright fat,
dark lung), low-pass filtered in k-space as a finite acquisition matrix would (in-plane partial
volume, blurring, mild Gibbs ringing), multiplied by a surface-coil sensitivity field, optionally
given a phase-encode ghost, and corrupted by complex Gaussian noise whose magnitude is Rician.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.imaging import (breath_hold_shift, coil_sensitivity, in_plane_axes, kspace_window,
                                      small_rotation, unit)

SLICE_THICKNESS_MM = 6.0
SLICE_GAP_MM = 4.0
THROUGH_PLANE_SAMPLES_MM = (-2.0, 0.0, 2.0)

# Mean gradient-echo intensities relative to blood (1.0) before per-exam variation.
BASE_INTENSITY = np.zeros(an.N_TISSUES)
BASE_INTENSITY[[an.AIR, an.LUNG, an.FAT, an.MUSCLE, an.LIVER, an.BONE, an.SOFT]] = [0.0, 0.05, 0.72, 0.27, 0.36, 0.12, 0.33]
BASE_INTENSITY[[an.LV_BLOOD, an.LV_MYO, an.RV_BLOOD, an.RV_MYO, an.OTHER_BLOOD, an.EPI_FAT]] = [1.0, 0.30, 0.95, 0.30, 0.85, 0.68]


@dataclass
class Acquisition:
    """Everything about how one exam was acquired (planes, timing, image formation)."""

    vendor: str
    n_frames: int
    rr_ms: float
    trigger_times_ms: np.ndarray
    activation: np.ndarray  # per frame: 0 = ED ... 1 = ES
    sax_planes: list[SlicePlane]
    lax_planes: dict[str, SlicePlane]
    shifts_mm: dict[tuple[str, int], np.ndarray]  # breath-hold displacement per (view, slice)
    intensity: np.ndarray  # per tissue class
    snr: float
    signal_scale: float  # stored value of blood (12-bit)
    coil: dict = field(default_factory=dict)
    ghost: float = 0.0
    kspace_fraction: float = 0.75  # acquired fraction of phase-encode lines

    @property
    def ed_frame(self) -> int:
        return int(np.argmin(self.activation))

    @property
    def es_frame(self) -> int:
        return int(np.argmax(self.activation))

    def planes(self) -> list[tuple[str, int, SlicePlane]]:
        out = [("sax", i, p) for i, p in enumerate(self.sax_planes)]
        out += [(v, 0, p) for v, p in self.lax_planes.items()]
        return out


def plan_acquisition(rng: np.random.Generator, heart: an.Heart, heart_rate: float, vendor: str) -> Acquisition:
    """Plan the exam: timing, SAX stack and LAX planes, matrix, contrast, noise, coils, shifts."""
    rr = 60000.0 / heart_rate
    n_frames = int(rng.integers(20, 31))
    # Retrospective/prospective gating of the era covered most of the cycle.
    coverage = rng.uniform(0.88, 0.98)
    trig = np.arange(n_frames) * rr * coverage / n_frames + rng.uniform(0, 8.0)
    activation = an.activation_curve(trig / rr, heart.es_frac)
    if rng.random() < 0.25:
        cols = 192
    else:
        cols = 256
    rows = 160
    spacing = float(np.clip(rng.normal(1.62, 0.22), 1.4, 2.5))
    ed = heart.ed
    e1, e2, e3 = heart.frame.T
    # SAX stack, planned perpendicular to an imperfect long axis, base to apex.
    n_sax = unit(small_rotation(rng, 4.0) @ e3)
    row, col = in_plane_axes(n_sax, rng, 15.0)
    first = ed.length_mm + rng.uniform(-3.0, 7.0)
    n_slices = int(np.clip(np.ceil((first + ed.epi_apex_mm) / 10.0) + 1, 10, 12))
    fov_offset = rng.normal(0, 8.0, 2)
    sax = []
    for k in range(n_slices):
        level = first - k * (SLICE_THICKNESS_MM + SLICE_GAP_MM)
        axis_point = heart.origin_mm + level * e3
        # plane through the axis point with the planned normal; centre the FOV there
        centre = axis_point + fov_offset[0] * row + fov_offset[1] * col
        sax.append(SlicePlane.centred(centre, row, col, (spacing, spacing), (rows, cols), SLICE_THICKNESS_MM))
    # Fix the stack so that the planned slice spacing holds exactly along the planned normal.
    base_pos = sax[0].centre_mm
    sax = [
        SlicePlane.centred(base_pos - k * 10.0 * n_sax, row, col, (spacing, spacing), (rows, cols), SLICE_THICKNESS_MM)
        for k in range(n_slices)
    ]
    # Long-axis planes through the LV centre: 4CH contains e3 and e1 (septum-lateral), 2CH e3 and e2.
    lv_centre = heart.origin_mm + 0.5 * ed.length_mm * e3
    lax = {}
    for view, normal in (("lax_4ch", e2), ("lax_2ch", e1)):
        nrm = unit(small_rotation(rng, 3.0) @ normal)
        r, c = in_plane_axes(nrm, rng, 20.0)
        centre = lv_centre + 0.15 * ed.length_mm * e3 + rng.normal(0, 6.0) * r + rng.normal(0, 6.0) * c
        lax[view] = SlicePlane.centred(centre, r, c, (spacing, spacing), (rows, cols), SLICE_THICKNESS_MM)
    shifts = {("sax", i): breath_hold_shift(rng, p) for i, p in enumerate(sax)}
    shifts.update({(v, 0): breath_hold_shift(rng, p) for v, p in lax.items()})
    intensity = BASE_INTENSITY * rng.uniform(0.85, 1.15, an.N_TISSUES)
    intensity[an.LV_BLOOD] = 1.0
    intensity[an.LV_MYO] = intensity[an.RV_MYO] = rng.uniform(0.22, 0.40)
    intensity[an.AIR] = 0.0
    coil = {
        "anterior_y": heart.thorax.centre_xy[1] - heart.thorax.semi_axes[1] - rng.uniform(5, 25),
        "posterior_y": heart.thorax.centre_xy[1] + heart.thorax.semi_axes[1] + rng.uniform(5, 25),
        "posterior_weight": rng.uniform(0.4, 0.9),
        "x_centre": heart.thorax.centre_xy[0] + rng.normal(0, 30),
        "depth_mm": rng.uniform(80, 140),
    }
    return Acquisition(
        vendor=vendor, n_frames=n_frames, rr_ms=rr, trigger_times_ms=np.round(trig, 1), activation=activation,
        sax_planes=sax, lax_planes=lax, shifts_mm=shifts, intensity=intensity,
        snr=float(rng.uniform(7.0, 25.0)), signal_scale=float(rng.uniform(700, 1400)), coil=coil,
        ghost=float(rng.uniform(0.03, 0.08)) if rng.random() < 0.3 else 0.0,
        kspace_fraction=float(rng.uniform(0.65, 0.85)),
    )


def render_plane(
    heart: an.Heart, acq: Acquisition, plane: SlicePlane, shift_mm: np.ndarray,
    frames: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """Magnitude images (len(frames), rows, cols) as stored 12-bit values (float, not rounded)."""
    rows, cols = plane.shape
    grid = plane.pixel_grid_mm()  # (R, C, 3)
    depths = np.array(THROUGH_PLANE_SAMPLES_MM)
    pts = grid[:, :, None, :] + depths[None, None, :, None] * plane.normal  # (R, C, D, 3)
    anat = pts - shift_mm  # the heart is displaced by +shift: sample the reference anatomy at p - shift
    bg = heart.background_labels(anat)
    inten = acq.intensity
    bg_img = inten[bg].mean(axis=2)
    # Heart region: a box around the projection of the heart centre.
    centre = heart.to_patient(np.array([0.0, 0.0, 0.55 * heart.ed.length_mm])) + shift_mm
    rc, _ = plane.patient_to_pixel(centre)
    rad = np.array([100.0 / plane.pixel_spacing_mm[0], 100.0 / plane.pixel_spacing_mm[1]])
    r0, c0 = np.maximum(np.floor(rc - rad).astype(int), 0)
    r1, c1 = np.minimum(np.ceil(rc + rad).astype(int) + 1, [rows, cols])
    sub_local = heart.to_local(anat[r0:r1, c0:c1]) if (r1 > r0 and c1 > c0) else None
    polar = an.polar_terms(sub_local, heart.ed.harmonics) if sub_local is not None else None
    sub_bg = bg[r0:r1, c0:c1]
    sens = coil_sensitivity(grid, acq.coil)
    window = kspace_window((rows, cols), acq.kspace_fraction)
    sigma = 1.0 / acq.snr
    out = np.empty((len(frames), rows, cols), dtype=np.float32)
    for i, f in enumerate(frames):
        w = float(acq.activation[f])
        img = bg_img.copy()
        if sub_local is not None:
            hl = heart.heart_labels_local(sub_local, w, polar)
            lab = np.where(hl >= 0, hl, sub_bg)
            val = inten[lab]
            # In-flow: slow apical blood at end-systole is darker on gradient echo.
            ph = heart.phase(w)
            u = np.clip(sub_local[..., 2] / ph.length_mm, 0, 1)
            val = np.where(lab == an.LV_BLOOD, val * (1.0 - 0.3 * w * (1.0 - u) ** 2), val)
            img[r0:r1, c0:c1] = val.mean(axis=2)
        img = img * sens
        if acq.ghost > 0:
            img = img + acq.ghost * np.roll(img, rows // 2, axis=0)
        k = np.fft.fft2(img) * window
        cplx = np.fft.ifft2(k)
        cplx = cplx + rng.normal(0, sigma, cplx.shape) + 1j * rng.normal(0, sigma, cplx.shape)
        out[i] = np.abs(cplx) * acq.signal_scale
    return out
