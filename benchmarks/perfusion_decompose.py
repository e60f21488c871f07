"""Where the MBF bias against the generator's truth comes from (issue #14): the estimators on
every combination of measured and true input curves, per segment, on a few held-out exams.

For each segment the automated pipeline quantified (:func:`cmr_atlas.perfusion.pipeline.run_exam`,
CNN segmentation) the Fermi and 2CXM fits are repeated with
- ``true/true (own t)``: the generator's AIF and segment curves on their own uniform grid (the mid
  slice's heartbeats): pure model mismatch of each estimator against the generator's kinetics,
  with heartbeat sampling;
- ``true/true``: the same curves on the slice's grid as the pipeline resamples it (its frame
  times from AcquisitionTime, the AIF from the AIF series' times);
- ``true AIF/meas``, ``meas AIF/true``, ``meas/meas`` (the pipeline's own figures);
- ``meas/meas, Hct``: the 2CXM with the subject's hematocrit instead of the config's;
- ``meas no floor/meas``: the AIF converted from the plain magnitude mean of the blood pool
  (before 2026-12-02's noise-floor correction, :func:`cmr_atlas.perfusion.concentration.unbiased_magnitude`).
Truth curves are baseline-subtracted (residual gadolinium of the earlier bolus is in the truth
tables; the pipeline measures concentration relative to the pre-bolus frames).  The AIF ratio
measured / true is printed at the peak and in the recirculation tail.  The truth is read here,
by the benchmark, never by a pipeline stage.

    python benchmarks/perfusion_decompose.py [--n 3] [--start 0] [--seed 880000] [--save d.pkl]
        [--tissue-model distributed|2cxm]   # the generator's myocardial kinetics (default: its default)
    python benchmarks/perfusion_decompose.py --report-saved d1.pkl d2.pkl
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from cmr_atlas.core.config import default
from cmr_atlas.perfusion import mbf as M
from cmr_atlas.perfusion import pipeline, prepare, segment, synthetic
from cmr_atlas.perfusion import quantify as Q
from cmr_atlas.perfusion.quantify import QuantConfig
from cmr_atlas.synth.clinical.perfusion import LEVELS

COMBOS = ("true/true (own t)", "true/true", "true AIF/meas", "meas AIF/true", "meas/meas", "meas/meas, Hct",
          "meas no floor/meas")


def _series(ex, cond: str, kind: str):
    return next(s for s in ex.series if s.kind == kind and s.stress_rest == cond)


def _truth_curve(ex, cond: str, name: str) -> np.ndarray:
    c = ex.truth["perfusion_curves"]
    c = c[(c.condition == cond) & (c.curve == name)].sort_values("frame")
    y = c.concentration_mmol_l.to_numpy(float)
    return y - y[0]  # residual gadolinium of the earlier bolus: the pipeline sees the change only


def _resample(grid: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` (sampled at ``t``) at ``grid``, by the monotone cubic the pipeline moves its AIF with."""
    return PchipInterpolator(t, y)(np.clip(grid, t[0], t[-1]))


def _truth_times(ex, cond: str) -> np.ndarray:
    c = ex.truth["perfusion_curves"]
    return c[(c.condition == cond) & (c.curve == "aif_blood")].sort_values("frame").time_s.to_numpy(float)


def exam_rows(ex, out, cfg: QuantConfig) -> tuple[list[dict], list[dict]]:
    rows, aif_rows = [], []
    plain = {p.condition: Q.arterial_input(p, cfg, noise_floor=False)
             for p in prepare.prepare_exam(ex.series, cfg.min_frames) if p.ok}
    for cond in ("stress", "rest"):
        perf = _series(ex, cond, "perfusion")
        n_pd = prepare.pd_frame_count(perf.flip_angle_deg[0])
        t0 = np.nanmin(perf.acquisition_time_s)
        # the truth curves are on the mid slice's frame times (its frame 0 is their time 0)
        own_t = _truth_times(ex, cond)[n_pd:] + perf.acquisition_time_s[LEVELS.index("mid"), 0] - t0
        true_aif = _truth_curve(ex, cond, "aif_blood")[n_pd:]
        own_grid = own_t[0] + prepare.dt_s(own_t) * np.arange(len(own_t))
        ta_own = _resample(own_grid, own_t, true_aif)
        for res in out.slices.get(("auto", cond), []):
            if not res.segment_curves or cond not in plain:
                continue
            dyn = perf.acquisition_time_s[LEVELS.index(res.level), n_pd:] - t0
            dt = prepare.dt_s(dyn)
            grid = dyn[0] + dt * np.arange(len(dyn))
            ta = _resample(grid, own_t, true_aif)
            old = _resample(grid, plain[cond].times_s, plain[cond].blood_mM)
            if res.level == "mid":
                aif_rows.append(_aif_ratio(ex.exam_id, cond, res.aif_mM, ta) |
                                {"old_" + k: v for k, v in _aif_ratio(ex.exam_id, cond, old, ta).items()
                                 if k.endswith("ratio")})
            for s, meas in res.segment_curves.items():
                true_s = _truth_curve(ex, cond, f"segment_{s}")[n_pd:]
                tt = _resample(grid, own_t, true_s)
                inputs = {COMBOS[0]: (ta_own, _resample(own_grid, own_t, true_s), prepare.dt_s(own_t)),
                          COMBOS[1]: (ta, tt, dt), COMBOS[2]: (ta, meas, dt), COMBOS[3]: (res.aif_mM, tt, dt),
                          COMBOS[4]: (res.aif_mM, meas, dt), COMBOS[5]: (res.aif_mM, meas, dt),
                          COMBOS[6]: (old, meas, dt)}
                truth = float(ex.segment_mbf[cond][s - 1])
                for combo, (a, t, d) in inputs.items():
                    hct = ex.hematocrit if combo.endswith("Hct") else cfg.hematocrit
                    for model in M.MODELS:
                        got = M.estimate_mbf(a, t, d, hct, model=model)
                        rows.append({"exam": ex.exam_id, "condition": cond, "level": res.level, "segment": s,
                                     "combo": combo, "model": model, "truth": truth, "mbf": got, "hct": ex.hematocrit,
                                     "qc_reason": res.segment_qc.get(s)})
    return rows, aif_rows


def _aif_ratio(exam: str, cond: str, meas: np.ndarray, true: np.ndarray) -> dict:
    """Measured / true AIF at the peak (3 frames around the true peak) and in the tail (the last
    third of the series, recirculation and plateau)."""
    pk = int(np.argmax(true))
    near = slice(max(pk - 1, 0), pk + 2)
    tail = slice(2 * len(true) // 3, None)
    return {"exam": exam, "condition": cond, "peak_true": float(true.max()), "peak_ratio": float(meas[near].mean() / true[near].mean()),
            "tail_true": float(true[tail].mean()), "tail_ratio": float(meas[tail].mean() / true[tail].mean())}


def report(rows: pd.DataFrame, aif: pd.DataFrame) -> None:
    print(f"\n{rows.exam.nunique()} exams, {len(rows) // (len(COMBOS) * len(M.MODELS))} segment fits; MBF - truth, "
          "ml/min/g, per segment (mean [SD])")
    print(f"{'AIF / tissue':22}" + "".join(f"{m + ' ' + c:>20}" for m in M.MODELS for c in ("stress", "rest")))
    for combo in COMBOS:
        line = f"{combo:22}"
        for model in M.MODELS:
            for cond in ("stress", "rest"):
                x = rows[(rows.combo == combo) & (rows.model == model) & (rows.condition == cond)]
                e = x.mbf - x.truth
                line += f"{e.mean():+10.3f} [{e.std():5.2f}]  "
        print(line)
    ok = rows[(rows.combo == COMBOS[4]) & rows.qc_reason.isna()]
    print(f"{'meas/meas QC-plausible':22}" + "".join(
        f"{(x.mbf - x.truth).mean():+10.3f} [{(x.mbf - x.truth).std():5.2f}]  " for model in M.MODELS
        for x in (ok[(ok.model == model) & (ok.condition == c)] for c in ("stress", "rest"))))
    mm = rows[rows.combo == COMBOS[4]]
    print(f"{'meas/meas median':22}" + "".join(
        f"{(x.mbf - x.truth).median():+10.3f}         " for model in M.MODELS
        for x in (mm[(mm.model == model) & (mm.condition == c)] for c in ("stress", "rest"))))
    for cond in ("stress", "rest"):
        x = rows[(rows.condition == cond) & (rows.combo == COMBOS[0])]
        print(f"truth {cond}: mean {x.truth.mean():.2f} ml/min/g")
    print("\nAIF measured / true (mid slice's grid): " + "; ".join(
        f"{c}: peak {g.peak_ratio.mean():.3f} (true {g.peak_true.mean():.2f} mM), tail {g.tail_ratio.mean():.3f} "
        f"(true {g.tail_true.mean():.2f} mM); without the noise-floor correction: peak {g.old_peak_ratio.mean():.3f}, "
        f"tail {g.old_tail_ratio.mean():.3f}" for c, g in aif.groupby("condition")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, default=880000)
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--save")
    ap.add_argument("--tissue-model", default="distributed", choices=("distributed", "2cxm"))
    ap.add_argument("--report-saved", nargs="+")
    args = ap.parse_args()
    if args.report_saved:
        parts = [pd.read_pickle(p) for p in args.report_saved]
        report(pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True))
        return
    import torch

    torch.set_num_threads(1)
    cfg = QuantConfig.from_config({**default("perfusion"), "pixel_maps": False})
    model, card = segment.load_segmenter(args.models_dir)
    rows, aif = [], []
    for i in range(args.start, args.start + args.n):
        ex = synthetic.generate(args.seed, i, observers=0, with_labels=False, tissue_model=args.tissue_model)
        r, a = exam_rows(ex, pipeline.run_exam(ex.exam_id, ex.series, cfg, model, card), cfg)
        rows += r
        aif += a
        print(f"exam {i} {ex.exam_id}: {len(r)} fits", flush=True)
        if args.save:
            pd.to_pickle((pd.DataFrame(rows), pd.DataFrame(aif)), args.save)
    report(pd.DataFrame(rows), pd.DataFrame(aif))


if __name__ == "__main__":
    main()
