"""The clinical protocol against its published targets, measured the way the tests and
``benchmarks/synth_clinical.py`` report them: over many subjects from the generator's own draws,
and (SSFP vs GRE) on images read by one fixed algorithm, never from the truth.

Targets (sources in the modules that draw them): MBF 2.25 +- 0.59 (stress) and 1.08 +- 0.23 (rest)
ml/min/g in unaffected subjects; AIF first-pass peak 3.5 +- 1.2 (stress) and 4.4 +- 1.2 (rest)
mmol/l; myocardial null TI on the scout typically 250-350 ms; native T1 950-1,050 ms (1.5 T) and
1,150-1,250 ms (3 T); ECV 0.25 +- 0.03; bSSFP vs GRE on the same hearts: cavity about +10 %,
myocardium about -10 to -15 %.
"""

from __future__ import annotations

import matplotlib.path as mpath
import numpy as np
import pandas as pd
from scipy import ndimage

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import kinetics as kin
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.clinical import cine, cohort, scout
from cmr_atlas.synth.clinical import perfusion_curves as pc
from cmr_atlas.synth.clinical.render import PlaneSampler, form_images

SSFP_GRE_SNR = {"ssfp": 30.0, "gre": 15.0}  # blood SNR: bSSFP about twice that of 2000-era GRE cine


def _mask(plane: SlicePlane, pts: np.ndarray) -> np.ndarray:
    rows, cols = plane.shape
    grid = np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2).astype(float)
    return mpath.Path(plane.patient_to_pixel(pts)[0]).contains_points(grid).reshape(rows, cols)


def read_areas(img: np.ndarray, plane: SlicePlane, endo_pts: np.ndarray, epi_pts: np.ndarray) -> tuple[int, int]:
    """The fixed reader: threshold half-way between blood (pool core) and myocardium (mid-wall) and
    take the bright region connected to the pool inside the epicardium as cavity, the rest of the
    epicardial area as myocardium.  Returns (cavity, myocardium) in pixels."""
    sp = plane.pixel_spacing_mm[0]
    endo, epi = _mask(plane, endo_pts), _mask(plane, epi_pts)
    core = ndimage.distance_transform_edt(endo) * sp > 6.0
    wall = epi & (ndimage.distance_transform_edt(~endo) * sp > 1.5) & (ndimage.distance_transform_edt(epi) * sp > 1.5)
    thr = 0.5 * (np.median(img[core]) + np.median(img[wall]))
    lab, _ = ndimage.label((img > thr) & epi)
    cavity = lab == np.bincount(lab[core]).argmax()
    return int(cavity.sum()), int((epi & ~cavity).sum())


def ssfp_vs_gre(n_hearts: int = 10, seed: int = 11) -> pd.DataFrame:
    """Cavity and myocardial areas (pixels) of three mid-ventricular ED slices per heart, imaged
    with bSSFP (1.5 T, on resonance) and with the legacy spoiled GRE, one row per slice."""
    rows = []
    ssfp, gre = cine.ssfp_contrast(1.5, 3.0, 70.0), cine.gre_contrast()
    for i in range(n_hearts):
        ctx = cohort.make_context(seed, i)
        rng = np.random.default_rng(i)
        trab = cine.draw_trabeculae(rng)
        mid = ctx.geometry.sax_level("mid")
        for k in (mid - 2, mid, mid + 2):
            plane, shift = ctx.geometry.sax_planes[k], np.zeros(3)
            sampler = PlaneSampler(ctx.heart, plane, shift)
            centre = tg.axis_point_in_plane(ctx.heart, plane, shift, 0.0)
            endo = tg.plane_contour(ctx.heart, 0.0, plane, shift, "endo", centre)
            epi = tg.plane_contour(ctx.heart, 0.0, plane, shift, "epi", centre)
            row = {"heart": i, "slice_index": k}
            for name, contrast in (("ssfp", ssfp), ("gre", gre)):
                sig = cine.plane_signal(sampler, 0.0, contrast, trab)
                img = form_images(sig[None], plane, ctx.coil, 1.0 / SSFP_GRE_SNR[name], rng, 0.8)[0]
                row[f"{name}_cavity_px"], row[f"{name}_myo_px"] = read_areas(img, plane, endo, epi)
            rows.append(row)
    return pd.DataFrame(rows)


def population(n: int = 300, seed: int = 17) -> pd.DataFrame:
    """One row per subject: field, physiology draws, AIF first-pass peaks and the scout's null
    point (physics only, no images)."""
    rows = []
    t = np.arange(0.0, 60.0, 0.05)
    for i in range(n):
        ctx = cohort.make_context(seed, i)
        ph = ctx.physiology
        rng = np.random.default_rng(10_000 + i)
        z = float(rng.standard_normal())
        peaks = {s: float(kin.aif_blood(t, *pc.draw_aif_shape(rng, s, 3.0, z)).max()) for s in ("stress", "rest")}
        acq = scout.draw_acquisition(ctx, np.random.default_rng(i), "sax")
        truth = scout.scout_truth_row(ctx, np.random.default_rng(1000 + i), acq)
        healthy = np.setdiff1d(np.arange(1, 17), list(ph.scar_segments) + list(ph.fibrosis_segments))
        rows.append({
            "field_t": ctx.field_t, "group": ph.perfusion_group, "amyloid_like": ph.amyloid_like,
            "mbf_stress": float(ph.mbf_stress.mean()), "mbf_rest": float(ph.mbf_rest.mean()),
            "aif_peak_stress": peaks["stress"], "aif_peak_rest": peaks["rest"],
            "native_t1_ms": ph.native_t1_myo_ms, "ecv": float(np.median(ph.ecv[healthy - 1])),
            "null_ti_ms": truth["null_ti_ms"], "operator_error": truth["operator_error"],
        })
    return pd.DataFrame(rows)
