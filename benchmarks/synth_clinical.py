"""The synthetic clinical protocol: calibration against the published figures, generation speed
beside the legacy generator, and the docs' montage.

    python benchmarks/synth_clinical.py [--n 300] [--n-exams 2] [--montage docs/images/clinical_montage.png]

Prints, from the generator's draws over ``--n`` subjects (no images): MBF at stress and rest in
unaffected subjects, AIF first-pass peaks, native T1 by field strength, ECV, the scout's myocardial
null TI and the operator's TI errors; from images of the same hearts read by one algorithm: the
bSSFP-vs-GRE cavity and myocardium differences; then seconds per exam and per series for both
protocols on this machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

TARGETS = {
    "mbf_stress": "2.25 +- 0.59", "mbf_rest": "1.08 +- 0.23", "aif_peak_stress": "3.5 +- 1.2",
    "aif_peak_rest": "4.4 +- 1.2", "null_ti_ms": "typically 250-350", "ecv": "0.25 +- 0.03",
}


def calibration(n: int) -> None:
    from cmr_atlas.synth.clinical.calibration import ssfp_vs_gre, population

    pop = population(n)
    normal = pop[(pop.group == "normal") & ~pop.amyloid_like]
    print(f"{n} subjects ({len(normal)} without ischaemia, microvascular disease or amyloid)")
    print(f"{'figure':22} {'generator':>24} {'published':>20}")
    for col in ("mbf_stress", "mbf_rest", "aif_peak_stress", "aif_peak_rest", "ecv"):
        src = normal if col.startswith("mbf") or col == "ecv" else pop
        print(f"{col:22} {src[col].mean():>13.2f} +- {src[col].std():<7.2f} {TARGETS[col]:>20}")
    q = np.percentile(pop.null_ti_ms, [10, 25, 50, 75, 90])
    print(f"{'null_ti_ms':22} {f'median {q[2]:.0f}, IQR {q[1]:.0f}-{q[3]:.0f}':>24} {TARGETS['null_ti_ms']:>20}")
    for field, lo_hi in ((1.5, "950-1,050"), (3.0, "1,150-1,250")):
        t1 = pop[pop.field_t == field].native_t1_ms
        print(f"{f'native T1 {field} T (ms)':22} {f'{t1.mean():.0f} +- {t1.std():.0f} (n={len(t1)})':>24} {lo_hi:>20}")
    mix = pop.operator_error.value_counts(normalize=True)
    print("operator TI for LGE: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in mix.items()))
    df = ssfp_vs_gre(10, 11)
    cav = df.ssfp_cavity_px.sum() / df.gre_cavity_px.sum() - 1
    myo = df.ssfp_myo_px.sum() / df.gre_myo_px.sum() - 1
    print(f"bSSFP vs GRE, same 10 hearts, 30 ED slices: cavity {100 * cav:+.1f} %, myocardium {100 * myo:+.1f} % "
          "(published: about +10 %, -10 to -15 %)")


def speed(n_exams: int) -> None:
    from cmr_atlas.synth.clinical import cohort as clinical
    from cmr_atlas.synth.mesa import cohort as mesa

    for name, module in (("legacy (mesa)", mesa), ("clinical", clinical)):
        t0 = time.perf_counter()
        n_series = n_images = 0
        for i in range(n_exams):
            ex = module.generate_exam(31, i, observers=2)
            if name == "clinical":
                n_series += len(ex.series)
                n_images += sum(int(np.prod([len(s.planes), s.images[0].shape[0]])) for s in ex.series)
            else:
                n_series += ex.images.n_slices + len(ex.images.lax) + 1
                n_images += ex.images.sax.shape[0] * ex.images.sax.shape[1] + sum(a.shape[0] for a in ex.images.lax.values())
        dt = (time.perf_counter() - t0) / n_exams
        print(f"{name:14} {dt:6.1f} s/exam, {dt * n_exams / n_series:5.2f} s/series, "
              f"{1000 * dt * n_exams / n_images:5.1f} ms/image (generation with truth and 2 observers, no writing)")


def _scarred_index(seed: int) -> int:
    """First exam of the cohort whose infarct reaches a mid-ventricular segment (seen on mid SAX)."""
    from cmr_atlas.synth.clinical import cohort

    for i in range(50):
        ph = cohort.make_context(seed, i, mi_fraction=1.0).physiology
        if set(ph.scar_segments) & set(range(7, 13)) and ph.scar_transmurality > 0.5:
            return i
    return 0


def montage(path: Path, seed: int = 20002) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmr_atlas.synth.clinical import cohort

    ex = cohort.generate_exam(seed, _scarred_index(seed), mi_fraction=1.0)
    c, lm = ex.truth["contours"], ex.truth["landmarks"]
    c, lm = c[c.observer == "truth"], lm[lm.observer == "truth"]
    mid = ex.ctx.geometry.sax_level("mid")
    picks = []
    for s in ex.series:
        if s.kind == "localizer":
            continue
        sl = s.slice_indices[len(s.slice_indices) // 2]
        if s.kind == "cine" and s.view == "sax" and sl != mid:
            continue
        if s.kind in ("lge", "lge_psir") and s.view == "sax" and sl != mid:
            continue
        frame = 0
        if s.kind in ("perfusion", "perfusion_aif"):  # the bolus peak in the image centre, after the PD frames
            img = s.images[len(s.planes) // 2]
            r, q = img.shape[1] // 2, img.shape[2] // 2
            curve = img[:, r - r // 3: r + r // 3, q - q // 3: q + q // 3].reshape(img.shape[0], -1).mean(axis=1)
            frame = 4 + int(np.argmax(curve[4:]))
        if s.kind == "ti_scout":
            frame = int(ex.truth["ti_scout"].null_frame.iloc[0])
        picks.append((s, len(s.planes) // 2, sl, frame))
    cols = 5
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.1 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (s, k, sl, f) in zip(axes.ravel(), picks):
        img = s.images[k][f].astype(float)
        # zoom on the heart: the truth's extent of this image plus a margin
        around = c[(c.sequence == s.sequence) & (c.view == s.view) & (c.slice_index == sl)]
        if len(around) and s.kind != "perfusion_aif":
            margin = 35.0 / s.planes[k].pixel_spacing_mm[0]
            ax.set_xlim(around.col_px.min() - margin, around.col_px.max() + margin)
            ax.set_ylim(around.row_px.max() + margin, around.row_px.min() - margin)
        lo = np.percentile(img, 1) if s.kind == "lge_psir" else 0
        ax.imshow(img, cmap="gray", vmin=lo, vmax=np.percentile(img, 99.5))
        cond = "stress" if "stress" in s.description.lower() or (s.kind.startswith("perfusion") and s.start_min < 1) else "rest"
        sel = (c.sequence == s.sequence) & (c.view == s.view) & (c.slice_index == sl) & (c.frame == f)
        if s.sequence == "perfusion":
            sel &= c.condition == cond
        for surface, colour in (("endo", "tab:red"), ("epi", "tab:green"), ("rv_endo", "tab:blue")):
            pts = c[sel & (c.surface == surface)]
            if len(pts) and s.kind != "perfusion_aif":
                closed = s.view == "sax"
                rr = np.r_[pts.row_px, pts.row_px.iloc[:1]] if closed else pts.row_px
                cc = np.r_[pts.col_px, pts.col_px.iloc[:1]] if closed else pts.col_px
                ax.plot(cc, rr, color=colour, lw=0.6)
        msel = (lm.sequence == s.sequence) & (lm.view == s.view) & (lm.slice_index == sl) & (lm.frame == f)
        if s.sequence == "perfusion":
            msel &= lm.condition == cond
        if s.kind != "perfusion_aif":
            ax.plot(lm[msel].col_px, lm[msel].row_px, "y+", ms=6, mew=1.0)
        title = f"{s.kind} {s.view}" + (f" {cond}" if s.sequence == "perfusion" else "")
        ax.set_title(title + (f" f{f}" if f else ""), fontsize=8)
    ctx, ti = ex.ctx, ex.truth["ti_scout"].iloc[0]
    fig.suptitle(f"Synthetic clinical exam {ex.label}: {ctx.vendor} {ctx.model} {ctx.field_t} T, infarct in AHA "
                 f"{', '.join(map(str, ctx.physiology.scar_segments))}; LGE at the operator's TI {ti.operator_ti_ms:.0f} ms "
                 f"({ti.operator_error}; myocardial null then {ti.lge_null_ti_ms:.0f} ms).\nTruth LV endo (red), epi (green), "
                 "RV endo (blue), landmarks (yellow)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"montage: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="subjects for the calibration figures")
    ap.add_argument("--n-exams", type=int, default=2, help="exams per protocol for the speed figures")
    ap.add_argument("--montage", type=Path, help="write the montage PNG here")
    args = ap.parse_args()
    calibration(args.n)
    speed(args.n_exams)
    if args.montage:
        montage(args.montage)


if __name__ == "__main__":
    main()
