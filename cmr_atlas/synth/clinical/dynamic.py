"""Fast rendering of a slice whose heart moves from frame to frame (free breathing, dynamic series).

A :class:`~cmr_atlas.synth.clinical.render.PlaneSampler` per frame costs 0.05-0.1 s; a perfusion
exam has 480 images.  Instead, one sampler per plane samples the anatomy on a fine through-plane
grid (1 mm steps over the slice thickness plus the breathing range), once per cardiac phase.  A
frame's through-plane displacement then picks and weights the grid depths under its slice profile
(exact partial volume for that displacement), its in-plane displacement and deformation are a
resampling of the heart layer over the static thorax (the chest wall does not move with the heart),
and the tissue signal is a table lookup per compartment: anatomy class, or AHA segment and wall
layer (inner / outer half) for LV myocardium (:data:`N_COMPARTMENTS`).  Truth contours are computed on the same through-plane grid
and carried by the same in-plane transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.clinical.render import PlaneSampler

SEGMENT_BASE = an.N_TISSUES  # LV myocardium of AHA segment s, layer l: SEGMENT_BASE + 2 (s - 1) + l
N_LAYERS = 2  # 0: subendocardial half of the wall, 1: subepicardial half
N_COMPARTMENTS = an.N_TISSUES + N_LAYERS * 17
DEPTH_STEP_MM = 1.0
PROFILE_EDGE_MM = 1.5  # width of each slice-profile edge (2D excitation is not a rectangle)


def compartment_of_segment(segment, layer):
    """Compartment of LV myocardium in AHA ``segment`` (1-17) and wall ``layer`` (0 inner, 1 outer)."""
    return SEGMENT_BASE + N_LAYERS * (np.asarray(segment) - 1) + np.asarray(layer)


def slice_profile_weights(depths_mm: np.ndarray, centre_mm: float, thickness_mm: float) -> np.ndarray:
    """Trapezoid slice profile (FWHM ``thickness_mm``) at ``centre_mm``, normalised to sum 1."""
    d = np.abs(np.asarray(depths_mm) - centre_mm)
    half = thickness_mm / 2.0
    w = np.clip((half + PROFILE_EDGE_MM / 2 - d) / PROFILE_EDGE_MM, 0.0, 1.0)
    s = w.sum()
    if s <= 0:
        raise ValueError(f"slice profile at {centre_mm} mm falls outside the sampled depths")
    return w / s


@dataclass
class PhaseLayers:
    """Compartments of the heart region at one cardiac phase, on the depth grid."""

    comp: np.ndarray  # (r1-r0, c1-c0, D) int16 compartment
    heart: np.ndarray  # (r1-r0, c1-c0, D) float: 1 where the heart (not the thorax) is


@dataclass
class MovingSlice:
    """A plane sampled once on a fine depth grid; frames are made for any displacement."""

    heart: an.Heart
    plane: SlicePlane
    max_offset_mm: float  # largest through-plane displacement the frames may need
    sampler: PlaneSampler = field(init=False)
    depths_mm: np.ndarray = field(init=False)
    _bg_fractions: np.ndarray = field(init=False, repr=False)
    _pivot: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        reach = self.plane.thickness_mm / 2 + PROFILE_EDGE_MM + self.max_offset_mm + 1.0
        n = int(np.ceil(reach / DEPTH_STEP_MM))
        self.depths_mm = np.arange(-n, n + 1) * DEPTH_STEP_MM
        self.sampler = PlaneSampler(self.heart, self.plane, np.zeros(3), self.depths_mm)
        w0 = slice_profile_weights(self.depths_mm, 0.0, self.plane.thickness_mm)
        bg = self.sampler.background
        self._bg_fractions = np.stack([(bg == c) @ w0 for c in range(an.N_TISSUES)])  # (13, R, C)
        self._pivot = tg.axis_point_in_plane(self.heart, self.plane, np.zeros(3), 0.0)

    def layers(self, w: float) -> PhaseLayers:
        """Compartments of the heart region at activation ``w`` (0 = ED, 1 = ES)."""
        r0, r1, c0, c1 = self.sampler.box
        lab = self.sampler.labels(w)[r0:r1, c0:c1]
        seg = self.sampler.myocardial_regions(w)[r0:r1, c0:c1]
        outer = np.nan_to_num(self.sampler.wall_depth(w)[r0:r1, c0:c1], nan=0.0) >= 0.5
        comp = np.where(lab == an.LV_MYO, compartment_of_segment(np.maximum(seg, 1), outer.astype(int)), lab)
        comp = comp.astype(np.int16)
        heart = (lab != self.sampler.background[r0:r1, c0:c1]).astype(float)
        return PhaseLayers(comp, heart)

    def background(self, table: np.ndarray) -> np.ndarray:
        """Static thorax signal (R, C) for per-class values ``table[:13]``."""
        return np.tensordot(table[: an.N_TISSUES], self._bg_fractions, axes=1)

    def heart_layer(self, layers: PhaseLayers, table: np.ndarray, offset_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Heart signal and heart fraction (R, C) with the heart ``offset_mm`` through the plane."""
        wts = slice_profile_weights(self.depths_mm, -offset_mm, self.plane.thickness_mm)
        sel = np.nonzero(wts)[0]
        h = layers.heart[..., sel]
        sig_box = (table[layers.comp[..., sel]] * h) @ wts[sel]
        frac_box = h @ wts[sel]
        sig, frac = np.zeros(self.plane.shape), np.zeros(self.plane.shape)
        r0, r1, c0, c1 = self.sampler.box
        sig[r0:r1, c0:c1], frac[r0:r1, c0:c1] = sig_box, frac_box
        return sig, frac

    def frame(self, layers: PhaseLayers, table: np.ndarray, shift_mm: np.ndarray, scale: float = 1.0,
              background: np.ndarray | None = None) -> np.ndarray:
        """True signal (R, C) with the heart displaced by ``shift_mm`` (patient) and scaled in-plane
        by ``scale`` about the LV axis point."""
        offset = float(shift_mm @ self.plane.normal)
        sig, frac = self.heart_layer(layers, table, offset)
        matrix, off = self.inplane_transform(shift_mm, scale)
        sig = ndimage.affine_transform(sig, matrix, off, order=1, mode="constant")
        frac = ndimage.affine_transform(frac, matrix, off, order=1, mode="constant")
        bg = self.background(table) if background is None else background
        return sig + (1.0 - frac) * bg

    def pivot_mm(self) -> np.ndarray:
        """Point of the plane the in-plane deformation is centred on: the undisplaced LV axis."""
        return self._pivot

    def inplane_transform(self, shift_mm: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(diagonal, offset) for ndimage.affine_transform: output pixel x samples input
        ``c + (x - c - d) / scale`` (c: pivot, d: in-plane displacement in pixels)."""
        sp = np.asarray(self.plane.pixel_spacing_mm, float)
        d = np.array([shift_mm @ self.plane.col_cosine, shift_mm @ self.plane.row_cosine]) / sp
        c, _ = self.plane.patient_to_pixel(self.pivot_mm())
        return np.full(2, 1.0 / scale), c - (c + d) / scale

    def move_points(self, pts: np.ndarray, shift_mm: np.ndarray, scale: float) -> np.ndarray:
        """Apply a frame's in-plane displacement and deformation to points of the plane (N, 3)."""
        d_in = self.plane.in_plane_part(shift_mm)
        c = self.pivot_mm()
        return c + scale * (pts - c) + d_in


@dataclass
class ContourAtlas:
    """Truth contours and SAX landmarks of a moving slice on a grid of through-plane offsets
    (the in-plane motion is applied per frame by :meth:`MovingSlice.move_points`)."""

    offsets_mm: np.ndarray
    contours: dict[str, list[np.ndarray | None]]  # surface -> per offset (N_RAYS, 3) or None
    insertions: list[list[np.ndarray]]  # per offset: 0 or 2 points (epicardium meets the RV)

    def at(self, offset_mm: float) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Contours and RV insertion points at ``offset_mm`` (linear between grid offsets)."""
        x = float(np.clip(offset_mm, self.offsets_mm[0], self.offsets_mm[-1]))
        i = int(np.clip(np.searchsorted(self.offsets_mm, x) - 1, 0, len(self.offsets_mm) - 2))
        f = (x - self.offsets_mm[i]) / (self.offsets_mm[i + 1] - self.offsets_mm[i])
        near = i if f < 0.5 else i + 1
        out = {}
        for surface, per in self.contours.items():
            a, b = per[i], per[i + 1]
            if a is not None and b is not None:
                out[surface] = (1 - f) * a + f * b
            elif per[near] is not None:
                out[surface] = per[near]
        ia, ib = self.insertions[i], self.insertions[i + 1]
        ins = [(1 - f) * p + f * q for p, q in zip(ia, ib)] if len(ia) == len(ib) == 2 else self.insertions[near]
        return out, ins


def contour_atlas(heart: an.Heart, plane: SlicePlane, w: float, lo_mm: float, hi_mm: float) -> ContourAtlas:
    """Endo/epi contours and RV insertions for through-plane heart offsets from lo to hi (1 mm grid)."""
    offsets = np.arange(np.floor(lo_mm) - 1.0, np.ceil(hi_mm) + 2.0, 1.0)
    contours: dict[str, list] = {"endo": [], "epi": []}
    insertions = []
    for o in offsets:
        shift = o * plane.normal
        centre = tg.axis_point_in_plane(heart, plane, shift, w)
        for surface in ("endo", "epi"):
            contours[surface].append(tg.plane_contour(heart, w, plane, shift, surface, centre))
        epi = contours["epi"][-1]
        insertions.append(tg.rv_insertions(heart, w, epi, shift) if epi is not None else [])
    return ContourAtlas(offsets, contours, insertions)
