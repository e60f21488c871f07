"""TI-selection figures of issue 15 on a held-out synthetic clinical cohort (docs/tiscout.md).

Prints: window accuracy of the paper's three networks and the default (5-fold subject-wise
cross-validation on the training scouts, and on the held-out scouts), null-point agreement with
observer 1 (the annotation) and observer 2 for both decodings, Pearson r, the paper's Figure 3
confusion display, the classical baseline by subgroup (amyloid-like, 4-chamber), the LGE audit
against the generator's truth, and the speed per scout on this machine's CPU threads.

Inputs (made by ``python -m cmr_atlas.tiscout.trainset``-style generation, see docs/tiscout.md):
``--bench`` held-out scouts (seed 152000), ``--amyloid`` amyloid-like scouts (seed 153000),
``--cv DIR`` the cross-validation runs ``cv_<arch>.npz`` of ``cmr_atlas.tiscout.train --cv``.

    PYTHONPATH=. python benchmarks/tiscout.py --bench B.npz --amyloid A.npz --cv RUNS [--figures docs/images]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cmr_atlas.core.config import default
from cmr_atlas.tiscout import audit
from cmr_atlas.tiscout import windows as W
from cmr_atlas.tiscout.classical import classical_null
from cmr_atlas.tiscout.model import DEFAULT_MODELS_DIR, load_ti_model, window_probabilities
from cmr_atlas.tiscout.trainset import ScoutSet

PAPER = {"vgg19": "83.9 %", "lstm": "81.9 %", "stemi": "92.1 %", "default": "goal >= 95 %"}


def labels(s: ScoutSet, ref: np.ndarray) -> np.ndarray:
    return np.stack([W.window_labels(s.ti_ms.shape[1], int(o)) for o in ref])


def decode(prob: np.ndarray, how: str) -> np.ndarray:
    f = (lambda p: W.first_acceptable(p)) if how == "first_acceptable" else (lambda p: W.change_point(p)[0])
    return np.array([np.nan if f(p) is None else f(p) for p in prob], float)


def null_stats(pred: np.ndarray, ref: np.ndarray, ti: np.ndarray) -> dict:
    ok = np.isfinite(pred)
    d = pred[ok] - ref[ok]
    idx = np.arange(len(ref))[ok]
    p_ti, r_ti = ti[idx, pred[ok].astype(int)], ti[idx, ref[ok].astype(int)]
    r = float(np.corrcoef(p_ti, r_ti)[0, 1]) if ok.sum() > 2 else np.nan
    n = len(ref)
    return {"n": n, "found": int(ok.sum()), "exact": np.sum(d == 0) / n, "within1": np.sum(np.abs(d) <= 1) / n,
            "at_or_after": np.sum(d >= 0) / n, "pearson_r": r, "mae_ms": float(np.mean(np.abs(p_ti - r_ti)))}


def fmt(st: dict) -> str:
    return (f"exact {100 * st['exact']:5.1f} %  within 1 {100 * st['within1']:5.1f} %  at/after "
            f"{100 * st['at_or_after']:5.1f} %  r {st['pearson_r']:.3f}  |TI err| {st['mae_ms']:5.1f} ms  "
            f"(found {st['found']}/{st['n']})")


def confusion(pred: np.ndarray, ref: np.ndarray, lo: int = 2, hi: int = 10) -> str:
    """The paper's Figure 3 as text: rows annotated frame, columns predicted frame (clipped)."""
    ok = np.isfinite(pred)
    p, r = np.clip(pred[ok].astype(int), lo, hi), np.clip(ref[ok].astype(int), lo, hi)
    cols = range(lo, hi + 1)
    out = ["annot\\pred " + " ".join(f"{c:>4d}" for c in cols)]
    for a in cols:
        out.append(f"{a:>10d} " + " ".join(f"{int(np.sum((r == a) & (p == c))):>4d}" for c in cols))
    return "\n".join(out)


def confusion_figure(pred, ref, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = np.isfinite(pred)
    lo, hi = 2, 10
    p, r = np.clip(pred[ok].astype(int), lo, hi), np.clip(ref[ok].astype(int), lo, hi)
    m = np.zeros((hi - lo + 1, hi - lo + 1), int)
    np.add.at(m, (r - lo, p - lo), 1)
    fig, ax = plt.subplots(figsize=(5, 4.4))
    colour = np.where(np.eye(len(m), dtype=bool), 2, np.where(np.tri(len(m), k=-1, dtype=bool), 1, 3))
    ax.imshow(np.where(m > 0, colour, 0), cmap=matplotlib.colors.ListedColormap(["white", "#9c9", "#270", "#ec5"]),
              vmin=0, vmax=3)
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ticks = [str(k) if lo < k < hi else (f"<={k}" if k == lo else f">={k}") for k in range(lo, hi + 1)]
    ax.set_xticks(range(len(m)), ticks)
    ax.set_yticks(range(len(m)), ticks)
    ax.set_xlabel("predicted null frame")
    ax.set_ylabel("annotated null frame (observer 1)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def decoding_figure(prob: np.ndarray, s: ScoutSet, path: Path, n: int = 3) -> None:
    """Window probabilities of the scouts where the two decodings differ most (else the first
    scouts), with observer 1's frame and both decoded frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fa, cp = decode(prob, "first_acceptable"), decode(prob, "change_point")
    gap = np.nan_to_num(np.abs(cp - fa), nan=99.0)
    pick = np.argsort(-gap, kind="stable")[:n]
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 3.0), squeeze=False)
    t0 = W.window_t0(s.ti_ms.shape[1])
    for ax, i in zip(axes[0], pick):
        ax.plot(t0, prob[i], "o-", ms=3, label="P(acceptable)")
        ax.axvline(s.obs1[i], color="k", ls=":", label="observer 1")
        for f, c, lab in ((fa[i], "tab:red", "first acceptable"), (cp[i], "tab:green", "change point")):
            if np.isfinite(f):
                ax.axvline(f, color=c, alpha=0.7, label=lab)
        ax.set_xlim(1, 14)
        ax.set_xlabel("window t0 (frame)")
        ax.set_title(f"scout {i} ({s.view[i]}{', amyloid' if s.amyloid[i] else ''})", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _saliency_png(s: ScoutSet, null: np.ndarray, path: Path) -> None:
    from cmr_atlas.report.tiscout import saliency_figure
    from cmr_atlas.tiscout.saliency import window_saliency

    model, card = load_ti_model("ti_default")
    i = int(np.nonzero(np.isfinite(null) & (s.view == "sax"))[0][0])
    f = int(null[i])
    t0 = [f - 2, f, f + 3]
    saliency_figure(window_saliency(model, card, s.raw[i], tuple(s.spacing_mm[i]), t0), t0, s.ti_ms[i], path)


def speed(name: str, s: ScoutSet, models_dir: str, n: int = 10) -> float:
    model, card = load_ti_model(name, models_dir)
    torch.set_num_threads(2)
    window_probabilities(model, card, s.raw[0], tuple(s.spacing_mm[0]))  # warm-up
    n = min(n, len(s))
    t = time.perf_counter()
    for i in range(n):
        window_probabilities(model, card, s.raw[i], tuple(s.spacing_mm[i]))
    return (time.perf_counter() - t) / n


def classical_frames(s: ScoutSet) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    fr = [classical_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i])).null_frame for i in range(len(s))]
    return np.array([np.nan if f is None else f for f in fr], float), (time.perf_counter() - t) / len(s)


def audit_check(s: ScoutSet, null_frame: np.ndarray) -> str:
    """Verdicts of the audit (predicted scout null -> expected LGE null vs the operator's TI)
    against the generator's operator_error (right / short / long against the true LGE null)."""
    a, cfg = s.audit, default("tiscout.audit")
    rows = {}
    for i in range(len(s)):
        exp = None if not np.isfinite(null_frame[i]) else float(audit.expected_lge_null_ms(
            s.ti_ms[i, int(null_frame[i])], a["lge_minutes_after_scout"][i], float(a["field_t"][i]),
            cfg["washout_per_min"], cfg["scout_to_lge"]))
        v = audit.ti_verdict(float(a["operator_ti_ms"][i]), exp, cfg["tolerance_ms"], cfg["tolerance_fraction"])
        rows.setdefault(str(a["operator_error"][i]), []).append(v)
    lines = ["truth \\ verdict " + " ".join(f"{v:>16s}" for v in audit.VERDICTS)]
    for t, vs in sorted(rows.items()):
        lines.append(f"{t:>15s} " + " ".join(f"{vs.count(v):>16d}" for v in audit.VERDICTS))
    agree = sum(vs.count({"right": "ok", "short": "too_short", "long": "too_long"}[t]) for t, vs in rows.items())
    lines.append(f"agreement with the truth: {agree}/{len(s)} = {100 * agree / len(s):.1f} %")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True)
    ap.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR), help="where ti_default and ti_stemi are read")
    ap.add_argument("--amyloid")
    ap.add_argument("--cv", help="folder of cv_<arch>.npz")
    ap.add_argument("--figures", help="folder for the confusion and decoding figures")
    ap.add_argument("--only-cv", action="store_true", help="print the cross-validation rows only (fast)")
    ap.add_argument("--calibrate", help="scouts (seed 154000): print the audit's scout_to_lge factor and stop")
    args = ap.parse_args(argv)
    if args.calibrate:
        c = ScoutSet.load(args.calibrate)
        f = audit.scout_to_lge_factor(c.null_ti_ms, c.audit["lge_null_ti_ms"], c.audit["lge_minutes_after_scout"],
                                      c.audit["field_t"], default("tiscout.audit")["washout_per_min"])
        print(f"scout_to_lge over {len(c)} scouts: median {np.median(f):.3f}, IQR {np.percentile(f, 25):.3f}-"
              f"{np.percentile(f, 75):.3f}")
        return 0
    s = ScoutSet.load(args.bench)
    print(f"held-out: {len(s)} scouts from {len(np.unique(s.subject))} exams (seed 152000); "
          f"{int(s.amyloid.sum())} amyloid-like, {int(np.sum(s.view != 'sax'))} 4-chamber")
    y1 = labels(s, s.obs1)
    probs = {}
    for name in () if args.only_cv else ("ti_default", "ti_stemi"):
        try:
            model, card = load_ti_model(name, args.models_dir)
        except Exception as exc:
            print(f"{name}: not available ({exc})")
            continue
        probs[name] = np.stack([window_probabilities(model, card, s.raw[i], tuple(s.spacing_mm[i]))
                                for i in range(len(s))])
    cv = _cv_table(args.cv, s, probs) if args.cv else {}
    print("\n== window accuracy (labels: observer 1) ==")
    for name, p in {**probs, **cv}.items():
        print(f"{name:24s} held-out {100 * np.mean((p >= 0.5) == y1):5.1f} %  vs observer 2 "
              f"{100 * np.mean((p >= 0.5) == labels(s, s.obs2)):5.1f} %")
    if args.only_cv:
        for name, p in cv.items():
            print(f"{name:24s} held-out null: {fmt(null_stats(decode(p, 'change_point'), s.obs1, s.ti_ms))}")
        return 0
    print("\n== null point ==")
    print(f"{'observer 2 vs observer 1':40s} {fmt(null_stats(s.obs2.astype(float), s.obs1, s.ti_ms))}")
    print(f"{'physical null frame vs observer 1':40s} {fmt(null_stats(s.null_frame.astype(float), s.obs1, s.ti_ms))}")
    for name, p in {**probs, **cv}.items():
        for how in ("first_acceptable", "change_point"):
            pred = decode(p, how)
            print(f"{name + ' ' + how:40s} {fmt(null_stats(pred, s.obs1, s.ti_ms))}")
            print(f"{'   vs observer 2':40s} {fmt(null_stats(pred, s.obs2, s.ti_ms))}")
            # the reference without a reader's perception noise (what the goals' 80 % would need)
            print(f"{'   vs physical null frame':40s} {fmt(null_stats(pred, s.null_frame, s.ti_ms))}")
    cl, cl_s = classical_frames(s)
    print(f"{'classical fit':40s} {fmt(null_stats(cl, s.obs1, s.ti_ms))}")
    print(f"{'   vs observer 2':40s} {fmt(null_stats(cl, s.obs2, s.ti_ms))}")
    print(f"{'   vs physical null frame':40s} {fmt(null_stats(cl, s.null_frame, s.ti_ms))}")
    _subgroups(s, probs, cl)
    if args.amyloid:
        _amyloid(ScoutSet.load(args.amyloid), probs, args.models_dir)
    if "ti_default" in probs:
        best = decode(probs["ti_default"], "change_point")
        fa = decode(probs["ti_default"], "first_acceptable")
        diff = np.isfinite(best) & (best != fa)
        print(f"\nchange_point differs from first_acceptable on {int(diff.sum())} of {len(s)} scouts "
              f"(first_acceptable earlier on {int(np.sum(fa[diff] < best[diff]))})")
        print("\n== Figure 3 display: ti_default change_point (rows observer 1, columns predicted) ==")
        print(confusion(best, s.obs1))
        print("\n== LGE audit (ti_default null) vs the generator's operator_error ==")
        print(audit_check(s, best))
        if args.figures:
            confusion_figure(best, s.obs1, Path(args.figures) / "tiscout_confusion.png",
                             f"ti_default, change point, {len(s)} held-out scouts")
            decoding_figure(probs["ti_default"], s, Path(args.figures) / "tiscout_decoding.png")
            _saliency_png(s, best, Path(args.figures) / "tiscout_saliency.png")
    print("\n== speed per scout (network only; CPU threads 2) ==")
    for name in probs:
        print(f"{name:12s} {1000 * speed(name, s, args.models_dir):7.1f} ms")
    print(f"{'classical':12s} {1000 * cl_s:7.1f} ms")
    return 0


def _cv_table(folder: str, s: ScoutSet, probs: dict) -> dict:
    print("\n== 5-fold subject-wise cross-validation on the training scouts (window accuracy) ==")
    held = {}
    for arch in ("vgg19", "lstm", "stemi", "default"):
        p = Path(folder) / f"cv_{arch}.npz"
        if not p.is_file():
            print(f"{arch:8s} not run")
            continue
        z = np.load(p)
        acc = json.loads(str(z["fold_accuracy"]))
        cfg = json.loads(str(z["cfg"]))
        vals = np.array(list(acc.values()))
        print(f"{arch:8s} folds {sorted(int(k) for k in acc)}: {100 * vals.mean():5.1f} % +- {100 * vals.std():.1f} "
              f"(paper {PAPER[arch]}); {cfg['epochs']} epoch(s) of "
              f"{'all' if cfg.get('steps') is None else cfg['steps'] * cfg['batch']} windows per fold")
        if "heldout_prob" in z.files:
            hp = z["heldout_prob"]
            f0 = int(sorted(acc)[0])
            held[f"{arch} (fold {f0} model)"] = hp[f0]
    return held


def _subgroups(s: ScoutSet, probs: dict, cl: np.ndarray) -> None:
    print("\n== by subgroup (vs observer 1) ==")
    groups = {"SAX": s.view == "sax", "4-chamber": s.view != "sax", "amyloid-like": s.amyloid,
              "3 T": s.audit.get("field_t", np.zeros(len(s))) == 3.0}
    for g, m in groups.items():
        if m.sum() < 2:
            continue
        sub = s.subset(np.nonzero(m)[0])
        for name, p in probs.items():
            print(f"{g:14s} {name:12s} {fmt(null_stats(decode(p[m], 'change_point'), sub.obs1, sub.ti_ms))}")
        print(f"{g:14s} {'classical':12s} {fmt(null_stats(cl[m], sub.obs1, sub.ti_ms))}")


def _amyloid(a: ScoutSet, probs: dict, models_dir: str) -> None:
    print(f"\n== amyloid-like scouts (seed 153000, {len(a)} scouts) ==")
    cl, _ = classical_frames(a)
    for name in probs:
        model, card = load_ti_model(name, models_dir)
        p = np.stack([window_probabilities(model, card, a.raw[i], tuple(a.spacing_mm[i])) for i in range(len(a))])
        conf = np.array([W.change_point(q)[1] for q in p])
        print(f"{name:12s} {fmt(null_stats(decode(p, 'change_point'), a.obs1, a.ti_ms))}  "
              f"median confidence {np.median(conf):.2f}, < 0.5 on {int(np.sum(conf < 0.5))}")
    print(f"{'classical':12s} {fmt(null_stats(cl, a.obs1, a.ti_ms))}")
    print(f"{'obs2 vs obs1':12s} {fmt(null_stats(a.obs2.astype(float), a.obs1, a.ti_ms))}")


if __name__ == "__main__":
    raise SystemExit(main())
