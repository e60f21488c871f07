"""RV insertion angle error alone, quicker than benchmarks/perfusion.py (no quantification).

Per exam of a synthetic clinical cohort (seed 880000 by default): prepare and motion-correct each
perfusion series, segment it (CNN), then find the insertions (:func:`quantify.stack_insertions`)
on the CNN's class maps and on the generator's own label maps (at the heart's median position, the
grid the corrected series is aligned to), each from the class maps alone (the wall arc moved on
``sectors.INSERTION_BEYOND_MM``: the automated path's default since 2026-12-04) and with the
slice's peak enhancement (:func:`manual.peak_enhancement`; the default before); ``--beyond-mm``
adds rows with other arc lengths for both (choose them on validation seeds); and on the CNN's maps
the insertion network's (:mod:`cmr_atlas.perfusion.insertion_net`, the default since 2026-12-04
evening; the rule on slices where it finds none), method ``network``, and the same with each slice's
stress and rest directions fused (:func:`insertion_net.fuse_conditions`, the default since
2026-12-04 night), method ``network fused``.  Figures as in
benchmarks/perfusion.py: the angle between the estimated and the true anterior insertion direction
from the LV centre (the truth at the heart's median breathing position, the corrected slice's pose,
:func:`insertion_net.truth_points`; frame 0's before 2026-12-04 night); and per insertion (anterior and inferior) the signed angle by which the
estimate lies inside the true arc (> 0: short of the insertion, towards the septum).

    python benchmarks/perfusion_insertions.py [--start 0] [--n 13] [--seed 880000] [--save rows.pkl] \
        [--beyond-mm 2 4 6]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from cmr_atlas.core.config import default
from cmr_atlas.perfusion import insertion_net, manual, prepare, segment, synthetic
from cmr_atlas.perfusion import quantify as Q
from cmr_atlas.perfusion.sectors import direction_error_deg

OWN = "rv_insert_anterior", "rv_insert_posterior"  # the generator's names (inferior = posterior)


def _angle_deg(v: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(v[1], v[0])))


def inside_deg(est: np.ndarray, true: np.ndarray, other: np.ndarray) -> float:
    """Signed angle (deg) of the direction ``est`` from ``true``, > 0 towards ``other`` (the arc's
    other end: the estimate short of the insertion)."""
    d = (_angle_deg(est) - _angle_deg(true) + 180.0) % 360.0 - 180.0
    towards = (_angle_deg(other) - _angle_deg(true) + 180.0) % 360.0 - 180.0
    return d * np.sign(towards)


def insertion_rows(exam: int, cond: str, src: str, how: str, insertions: list, truth: list[dict]) -> list[dict]:
    """One row per slice with an estimated and a true insertion pair."""
    rows = []
    for k, (ins, t) in enumerate(zip(insertions, truth)):
        if ins is None or not set(OWN) <= set(t):
            continue
        ta, ti = (t[n] - t["lv_centre"] for n in OWN)
        rows.append({"exam": exam, "condition": cond, "slice": k, "maps": src, "method": how,
                     "angle_deg": direction_error_deg(ins.anterior_direction(), ta),
                     "inside_anterior_deg": inside_deg(ins.anterior - ins.centre, ta, ti),
                     "inside_inferior_deg": inside_deg(ins.inferior - ins.centre, ti, ta)})
    return rows


def stack_rows(exam: int, cond: str, maps: dict[str, list[np.ndarray]], enh: list[np.ndarray], plane,
               truth: list[dict], beyond_mm: tuple[float | None, ...] = (None,)) -> list[dict]:
    rows = []
    for src, labels in maps.items():
        for (how, e), beyond in ((m, b) for m in (("labels", None), ("enhancement", enh)) for b in beyond_mm):
            if beyond is not None:
                how = f"{how} +{beyond:g} mm"
            rows += insertion_rows(exam, cond, src, how, Q.stack_insertions(labels, plane, e, beyond), truth)
    return rows


def run(start: int, n: int, seed: int, models_dir: str, beyond_mm: tuple[float | None, ...] = (None,)) -> pd.DataFrame:
    model, card = segment.load_segmenter(models_dir)
    insertion = insertion_net.load(models_dir)
    cfg = Q.QuantConfig.from_config({**default("perfusion"), "pixel_maps": False})
    rows = []
    for i in range(start, start + n):
        ex = synthetic.generate(seed, i, observers=0)
        lm = ex.truth["landmarks"]
        slice_ids = sorted({k[1] for k in ex.labels})
        by_cond = {}
        for p in prepare.prepare_exam(ex.series, cfg.min_frames):
            if not p.ok:
                continue
            mcs = Q.correct_slices(p)
            maps = {"cnn": Q.auto_labels(model, card, p, mcs),
                    "generator": [ex.labels[(p.condition, slice_ids[k])] for k in range(len(mcs))]}
            # the truth at the heart's median breathing position: the corrected slice's anatomy
            truth = [insertion_net.truth_points(lm, p.condition, slice_ids[k], p.n_pd) for k in range(len(mcs))]
            enh = [manual.peak_enhancement(mc.frames[p.n_pd:]) for mc in mcs]
            rows += stack_rows(i, p.condition, maps, enh, p.series.planes[0], truth, beyond_mm)
            # the insertion network on each slice's temporal maximum, the rule where it finds none
            planes = p.planes
            net = insertion_net.detect(*insertion, [insertion_net.slice_image(mc.frames, p.n_pd) for mc in mcs],
                                       planes, maps["cnn"], cfg.insertion_absent_threshold)
            rule = Q.stack_insertions(maps["cnn"], p.series.planes[0])
            rows += insertion_rows(i, p.condition, "cnn", "network", insertion_net.combine(net, rule), truth)
            by_cond[p.condition] = (p, planes, net, rule, truth)
        if {"stress", "rest"} <= set(by_cond) and not any(v[0].pair_reason for v in by_cond.values()):
            # the pipeline's default: each slice's stress and rest network directions fused
            (_, pl_s, net_s, rule_s, t_s), (_, pl_r, net_r, rule_r, t_r) = by_cond["stress"], by_cond["rest"]
            fused_s, fused_r = insertion_net.fuse_conditions(net_s, pl_s, net_r, pl_r)
            rows += insertion_rows(i, "stress", "cnn", "network fused", insertion_net.combine(fused_s, rule_s), t_s)
            rows += insertion_rows(i, "rest", "cnn", "network fused", insertion_net.combine(fused_r, rule_r), t_r)
        print(f"exam {i} {ex.exam_id}", flush=True)
    return pd.DataFrame(rows)


def report(df: pd.DataFrame) -> None:
    for (src, how), g in df.groupby(["maps", "method"]):
        a, ok = g.angle_deg, g.angle_deg <= 60
        ends = pd.concat([g.inside_anterior_deg[ok], g.inside_inferior_deg[ok]])
        print(f"{src:9s} {how:11s}: {a.mean():.1f} +- {a.std(ddof=0):.1f} deg, median {a.median():.1f} "
              f"(n {len(a)}, > 60: {(~ok).sum()}); without > 60: {a[ok].mean():.1f} +- {a[ok].std(ddof=0):.1f}, "
              f"median {a[ok].median():.1f} (n {ok.sum()}); ends inside the true arc: median {ends.median():+.1f}, "
              f"IQR {ends.quantile(0.25):+.1f} .. {ends.quantile(0.75):+.1f}, beyond it by > 15: {(ends < -15).sum()} "
              f"of {len(ends)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--seed", type=int, default=880000)
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="pickle the rows here")
    ap.add_argument("--report-saved", help="only print the figures of a --save file")
    ap.add_argument("--beyond-mm", type=float, nargs="+",
                    help="also with each end moved this far on along the epicardium (sectors.INSERTION_BEYOND_MM "
                         "candidates; choose on validation seeds, never the held-out 880000)")
    args = ap.parse_args()
    if args.report_saved:
        report(pd.read_pickle(args.report_saved))
        return
    import torch

    torch.set_num_threads(args.threads)
    df = run(args.start, args.n, args.seed, args.models_dir, (None, *(args.beyond_mm or ())))
    if args.save:
        df.to_pickle(args.save)
    report(df)


if __name__ == "__main__":
    main()
