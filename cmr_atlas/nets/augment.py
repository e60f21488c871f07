"""Random augmentation on the network grid, applied to a batch in torch.

One random affine map per image (rotation, optional flips, zoom, shift) moves the image
(bilinear), its label mask (nearest) and its landmark points (exact, same matrix), followed by
brightness/contrast changes of the whitened intensities.  Everything is driven by a
``numpy.random.Generator`` so training is reproducible from a seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 180.0      # uniform in [-r, r]
    flip_rows: float = 0.5           # probability of flipping top/bottom
    flip_cols: float = 0.5           # probability of flipping left/right
    zoom: tuple[float, float] = (0.8, 1.2)
    shift_px: float = 8.0            # uniform in [-s, s] per axis (network pixels)
    brightness: float = 0.5          # additive, in units of the whitened image's SD
    contrast: float = 0.5            # multiplicative factor in [1-c, 1+c]
    noise_sd: float = 0.05
    coil_p: float = 0.0              # probability of a surface-coil shading field (Xue et al.: 0.5)
    coil_falloff: tuple[float, float] = (0.3, 1.2)  # log-intensity drop across the field of view
    band_p: float = 0.0              # probability of dark off-resonance bands (bSSFP at 3 T)
    band_cycles: tuple[float, float] = (0.4, 1.6)   # off-resonance cycles (1/TR) across the field of view
    band_width: tuple[float, float] = (0.008, 0.025)  # band SD, fraction of the field of view (1.5-5 mm)
    band_depth: tuple[float, float] = (0.6, 1.0)      # fraction of the signal lost at the band's centre
    motion_p: float = 0.0            # probability of breathing during the acquisition (ghosts along phase-encode)
    motion_px: tuple[float, float] = (1.0, 6.0)       # peak in-plane displacement, network pixels
    motion_beats: tuple[int, int] = (6, 16)           # heartbeats (k-space segments) of the acquisition

    def to_dict(self) -> dict:
        return asdict(self)


SEGMENTATION_AUG = AugmentConfig(coil_p=0.5)
# Landmark identities depend on orientation (anterior vs inferior), so no flips and moderate
# rotations for landmark models.
LANDMARK_AUG = AugmentConfig(rotation_deg=30.0, flip_rows=0.0, flip_cols=0.0, zoom=(0.85, 1.15),
                             shift_px=10.0, brightness=0.3, contrast=0.3, coil_p=0.5)


def random_thetas(rng: np.random.Generator, n: int, size: int, cfg: AugmentConfig) -> torch.Tensor:
    """Affine matrices ``(n, 2, 3)`` for ``F.affine_grid`` (output -> input, normalised (x, y))."""
    th = np.zeros((n, 2, 3))
    for i in range(n):
        a = np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
        z = rng.uniform(*cfg.zoom)
        fx = -1.0 if rng.random() < cfg.flip_cols else 1.0
        fy = -1.0 if rng.random() < cfg.flip_rows else 1.0
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        th[i, :, :2] = rot @ np.diag([fx, fy]) / z
        th[i, :, 2] = rng.uniform(-cfg.shift_px, cfg.shift_px, 2) * 2.0 / (size - 1)
    return torch.tensor(th, dtype=torch.float32)


def warp_images(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=True)


def warp_points(rc: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Move points ``(B, K, 2)`` (row, col network pixels; NaN = absent) with the images.

    ``theta`` maps output to input, so points go through its inverse.
    """
    xy_in = torch.stack([rc[..., 1], rc[..., 0]], -1) * (2.0 / (size - 1)) - 1.0
    theta = theta.to(rc.device)
    a, t = theta[:, :, :2], theta[:, :, 2]
    xy_out = torch.einsum("bij,bkj->bki", torch.linalg.inv(a), xy_in - t[:, None, :])
    xy_out = (xy_out + 1.0) * ((size - 1) / 2.0)
    return torch.stack([xy_out[..., 1], xy_out[..., 0]], -1)


def coil_shading(x: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Surface-coil augmentation (Xue et al. 2021): with probability ``coil_p`` an image's signal
    (above its minimum) falls off exponentially away from a coil on a random side, by a drawn
    ``coil_falloff`` in log intensity across the field of view; the image is whitened again, as
    preprocessing whitens every image.  The draws are made for every image, so the random stream
    does not depend on ``coil_p``."""
    b = x.shape[0]
    use = rng.random(b) < cfg.coil_p
    angle = rng.uniform(0, 2 * np.pi, b)
    drop = rng.uniform(*cfg.coil_falloff, b)
    # u runs -1.4..1.4 across the grid towards the coil's side
    return _shaded(x, use, lambda i, u, v: torch.exp(-float(drop[i]) * (u + 1.0) / 2.0), angle)


def _whitened(y: torch.Tensor) -> torch.Tensor:
    """``y`` at zero mean and unit SD, as preprocessing whitens every image."""
    return (y - y.mean()) / y.std().clamp_min(1e-6)


def _shaded(x: torch.Tensor, use: np.ndarray, field, angle: np.ndarray) -> torch.Tensor:
    """``x (B, C, n, n)`` with each used image's signal (every channel's) above its minimum multiplied by
    ``field(i, u, v)`` and whitened again, as preprocessing whitens every image; ``u`` and ``v``
    are the grid's coordinates (-1..1 along its rows and columns) turned by ``angle[i]``."""
    if not use.any():
        return x
    ax = torch.linspace(-1.0, 1.0, x.shape[-1], device=x.device)
    out = x.clone()
    for i in np.flatnonzero(use):
        u = np.cos(angle[i]) * ax[None, :] + np.sin(angle[i]) * ax[:, None]
        v = -np.sin(angle[i]) * ax[None, :] + np.cos(angle[i]) * ax[:, None]
        f = field(i, u, v)
        for c in range(x.shape[1]):  # neighbouring slices lie under the same coil
            if not x[i, c].any():
                continue  # a missing neighbour (past the end of the stack) stays zeros
            y = (x[i, c] - x[i, c].min()) * f
            out[i, c] = _whitened(y)
    return out


def offresonance_bands(x: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Off-resonance band augmentation: with probability ``band_p`` an image's signal (above its
    minimum) drops to near zero along the curves where a smooth random off-resonance field crosses
    half a cycle (+-1/(2 TR)), as bSSFP's dark bands do at 3 T; the image is whitened again.

    A different model from the synthetic cine's (a Bloch steady-state profile of a shimmed field
    map): a field linear along a random direction with a random quadratic bend, ``band_cycles``
    cycles across the field of view, one crossing near the centre of the grid (the heart), and a
    Gaussian dip of ``band_width`` SD (fraction of the field of view) and ``band_depth`` about each
    half-cycle crossing.  Draws are made for every image, so the stream does not depend on
    ``band_p`` once it is above 0 (at 0, :func:`intensity` draws nothing, as before the option).
    """
    b = x.shape[0]
    use = rng.random(b) < cfg.band_p
    angle = rng.uniform(0, 2 * np.pi, b)
    cycles = rng.uniform(*cfg.band_cycles, b)
    bend = rng.uniform(-1.0, 1.0, b)
    # one crossing within 40 % of the half-width of the centre, where the heart is on the grid
    through = rng.uniform(-0.4, 0.4, b)
    width = rng.uniform(*cfg.band_width, b)
    depth = rng.uniform(*cfg.band_depth, b)

    def field(i: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        f = 0.5 + cycles[i] * (u - float(through[i]) + float(bend[i]) * v * v) / 2.0  # cycles
        d = torch.remainder(f - 0.5, 1.0)
        d = torch.minimum(d, 1.0 - d)  # distance in cycles to the nearest half-cycle crossing
        return 1.0 - float(depth[i]) * torch.exp(-0.5 * (d / float(width[i] * cycles[i])) ** 2)

    return _shaded(x, use, field, angle)


def breathing_ghosts(x: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Breathing augmentation: with probability ``motion_p`` an image is re-acquired as if the
    anatomy moved while its k-space was filled, segment by segment (``motion_beats`` heartbeats,
    phase-encode lines in order along a random axis of the grid), so edges blur and ghost along
    phase-encode while the image keeps the place of its centre line (the landmarks do not move).

    A different model from the synthetic cine's (a head-foot sinusoid of the breathing period
    projected on the plane): here a random in-plane direction, a displacement of up to
    ``motion_px`` that drifts as a random quarter to two cycles of a sinusoid over the acquisition,
    on the magnitude image (its minimum subtracted) rather than on complex coil data; the image is
    whitened again.  Draws are made for every image, so the stream does not depend on ``motion_p``
    once it is above 0."""
    b, n = x.shape[0], x.shape[-1]
    use = rng.random(b) < cfg.motion_p
    axis = rng.integers(0, 2, b)  # phase-encode along the grid's rows (0) or columns (1)
    beats = rng.integers(cfg.motion_beats[0], cfg.motion_beats[1] + 1, b)
    peak = rng.uniform(*cfg.motion_px, b)
    angle = rng.uniform(0, 2 * np.pi, b)
    cycles = rng.uniform(0.25, 2.0, b)
    start = rng.uniform(0, 2 * np.pi, b)
    if not use.any():
        return x
    k = np.fft.fftfreq(n)  # cycles per pixel, fftfreq order
    out = x.clone()
    for i in np.flatnonzero(use):
        # each line's time: its heartbeat when the lines go from -k_max to +k_max
        t = np.floor((k + 0.5) * beats[i]) / beats[i]
        d = peak[i] * np.sin(2 * np.pi * cycles[i] * t + start[i])
        d = d - d[0]  # relative to the centre line, whose place the image takes
        d_rc = np.stack([d * np.cos(angle[i]), d * np.sin(angle[i])])  # (2, n): row, col shift per line
        ramp = np.exp(-2j * np.pi * (d_rc[0][:, None] * k[:, None] + d_rc[1][:, None] * k[None, :]))
        phase = torch.from_numpy((ramp if axis[i] == 0 else ramp.T).astype(np.complex64))
        for c in range(x.shape[1]):
            if not x[i, c].any():
                continue  # a missing neighbour slice stays zeros
            y = torch.fft.ifft2(torch.fft.fft2(x[i, c] - x[i, c].min()) * phase).abs()
            out[i, c] = _whitened(y)
    return out


def intensity(x: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    if cfg.coil_p > 0:
        x = coil_shading(x, rng, cfg)
    if cfg.band_p > 0:
        x = offresonance_bands(x, rng, cfg)
    if cfg.motion_p > 0:
        x = breathing_ghosts(x, rng, cfg)
    b = x.shape[0]
    c = torch.tensor(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, b), dtype=x.dtype, device=x.device).view(b, 1, 1, 1)
    s = torch.tensor(rng.uniform(-cfg.brightness, cfg.brightness, b), dtype=x.dtype, device=x.device).view(b, 1, 1, 1)
    if x.device.type == "cpu":
        noise = torch.tensor(rng.standard_normal(x.shape) * cfg.noise_sd, dtype=x.dtype)
    else:  # on a GPU the pixel noise is drawn there (seeded from rng): numpy's would be the training's bottleneck
        g = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**62)))
        noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * cfg.noise_sd
    return x * c + s + noise


def augment_batch(rng: np.random.Generator, images: torch.Tensor, cfg: AugmentConfig,
                  labels: torch.Tensor | None = None, points: torch.Tensor | None = None):
    """Augment ``images (B, C, n, n)`` (channels moved alike) with optional ``labels (B, n, n)``
    and ``points (B, K, 2)``.

    ``labels`` may also be soft, ``(B, K, n, n)`` fractions of the foreground classes (each warped
    bilinearly, 0 outside the image; the background is what they leave).
    Returns ``(images, labels, points)`` (``None`` where not given).
    """
    size = images.shape[-1]
    theta = random_thetas(rng, images.shape[0], size, cfg)
    out = intensity(warp_images(images, theta), rng, cfg)
    lab = None
    if labels is not None and labels.dim() == 4:
        lab = warp_images(labels.float(), theta).clamp(0.0, 1.0)
    elif labels is not None:
        lab = warp_images(labels[:, None].float(), theta, mode="nearest")[:, 0].round().long()
    pts = None if points is None else warp_points(points, theta, size)
    return out, lab, pts
