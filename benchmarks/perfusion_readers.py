"""Which reading the automated-vs-manual MBF difference belongs to (issue 14): per segment, the
automated path against the manual path of each observer, of each observer's masks with the
automated insertions, of the generator's exact masks (the label maps at the corrected pose)
with the automated insertions, and of the oracle: the exact masks with the true insertions; paired
t-tests on the segments QC-plausible in both.  ``--against "manual obs1"`` compares every reading
with observer 1's manual path instead of the automated one: whether any segmentation of the
anatomy, the oracle included, could pass the issue's paired test against that reader.

    python benchmarks/perfusion_readers.py --seed 886000 --n 26 [--start 0] [--save r.pkl]
    python benchmarks/perfusion_readers.py --report-saved r1.pkl r2.pkl [--against "manual obs1"]

Validation seeds by habit (886000): it is a diagnosis of the reference, not a figure of record,
and chooses nothing.  The truth (label maps, insertions, segment MBF) is read here, by the
benchmark, never by a pipeline stage.
"""

from __future__ import annotations

import argparse

import pandas as pd
from scipy import stats

from cmr_atlas.core.config import default
from cmr_atlas.perfusion import insertion_net, pipeline, prepare, segment, synthetic
from cmr_atlas.perfusion import quantify as Q
from cmr_atlas.perfusion.sectors import Insertions

OBSERVERS = ("obs1", "obs2")
ORACLE = "exact masks, true insertions"


def true_insertions(landmarks: pd.DataFrame, f, ids: list, exact: list) -> list:
    """The generator's insertions of each slice at the corrected pose, from the exact mask's LV
    centre; None where the truth lacks either insertion (the slice then borrows, as the paths do)."""
    out = []
    for k, lab in enumerate(exact):
        t = insertion_net.truth_points(landmarks, f.p.condition, ids[k], f.p.n_pd)
        centre = Q.lv_centre(lab)
        ok = centre is not None and insertion_net.ANTERIOR in t and insertion_net.INFERIOR in t
        out.append(Insertions(centre, t[insertion_net.ANTERIOR], t[insertion_net.INFERIOR]) if ok else None)
    return out


def run(seed: int, start: int, n: int, models_dir: str) -> pd.DataFrame:
    model, card = segment.load_segmenter(models_dir)
    net = insertion_net.load(models_dir)
    cfg = Q.QuantConfig.from_config({**default("perfusion"), "pixel_maps": False})
    rows = []
    for i in range(start, start + n):
        ex = synthetic.generate(seed, i, observers=2)
        c, lm = ex.truth["contours"], ex.truth["landmarks"]
        anns = {o: pipeline.Annotations(c[c.observer == o], lm[lm.observer == o]) for o in OBSERVERS}
        ids = sorted({k[1] for k in ex.labels})
        found = [pipeline.find_series(p, cfg, model, card, None, net)
                 for p in prepare.prepare_exam(ex.series, cfg.min_frames) if p.ok]
        pipeline.fuse_insertions(found)
        for f in found:
            auto_ins = Q.borrow_insertions(pipeline.auto_insertions(f), f.labels)  # as the pipeline's auto path
            exact = [ex.labels[(f.p.condition, ids[k])] for k in range(len(f.mcs))]
            readings = {"auto": (f.labels, auto_ins), "exact masks, auto insertions": (exact, auto_ins),
                        ORACLE: (exact, Q.borrow_insertions(true_insertions(lm, f, ids, exact), exact))}
            for o, ann in anns.items():
                labels, ins = pipeline.manual_labels(f, ann)
                readings[f"manual {o}"] = (labels, Q.borrow_insertions(ins, labels))
                readings[f"{o} masks, auto insertions"] = (labels, auto_ins)
            for name, (labels, ins) in readings.items():
                for k, r in enumerate(Q.quantify_series(f.p, f.mcs, labels, ins, f.aif, cfg)):
                    for seg, v in r.segment_mbf.get("fermi", {}).items():
                        rows.append(dict(exam=i, condition=f.p.condition, slice=k, aha_segment=seg, reading=name,
                                         mbf=v, plausible=r.segment_qc.get("segment", {}).get(seg) is None,
                                         truth=ex.segment_mbf[f.p.condition][seg - 1]))
        print(f"exam {i}", flush=True)
    return pd.DataFrame(rows)


def report(d: pd.DataFrame, against: str = "auto") -> None:
    key = ["exam", "condition", "slice", "aha_segment"]
    mbf = d.pivot_table(index=key, columns="reading", values="mbf")
    ok = d.assign(plausible=d.plausible & d.mbf.notna()).pivot_table(index=key, columns="reading", values="plausible",
                                                                      aggfunc="first").fillna(False).astype(bool)
    truth = d.groupby(key).truth.first()
    for cond in ("stress", "rest"):
        m, q, t = (x.xs(cond, level="condition") for x in (mbf, ok, truth))
        print(f"\n{cond}: {against} - reading per segment (Fermi, QC-plausible in both)")
        for name in [c for c in m.columns if c != against]:
            both = q[against] & q[name]
            a, b = m.loc[both, against], m.loc[both, name]
            print(f"  {name:30s} n {int(both.sum()):4d}  {float((a - b).mean()):+.4f} (SD {float((a - b).std()):.3f}), "
                  f"paired t p {stats.ttest_rel(a, b).pvalue:.3f};  reading - truth {float((b - t[both]).mean()):+.3f}, "
                  f"{against} - truth {float((a - t[both]).mean()):+.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=886000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--n", type=int, default=26)
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="pickle the rows here")
    ap.add_argument("--report-saved", nargs="+", help="only print the figures of --save files (pooled)")
    ap.add_argument("--against", default="auto", help='the reading every other is compared with ("auto", "manual obs1", ...)')
    args = ap.parse_args()
    if args.report_saved:
        report(pd.concat([pd.read_pickle(p) for p in args.report_saved], ignore_index=True), args.against)
        return
    import torch

    torch.set_num_threads(args.threads)
    d = run(args.seed, args.start, args.n, args.models_dir)
    if args.save:
        d.to_pickle(args.save)
    report(d, args.against)


if __name__ == "__main__":
    main()
