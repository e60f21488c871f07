"""The Table 5 check on a synthetic cohort run through the whole pipeline (CNN path vs manual path).

    cmr-atlas synth [--protocol clinical] --n-exams 300 --seed 40001 --observers 2 --jobs 2 --out COHORT
    snakemake --cores 2 --config cohort_dir=COHORT results_dir=RESULTS
    PYTHONPATH=. python benchmarks/atlas_check.py --cohort COHORT --results RESULTS

The automated atlas comes from the shipped CNNs (segmentation + landmarks -> guide points -> fit);
the manual atlas from the cohort's simulated observer (``manual_observer``, obs1 by default) on the
same exams.  Printed per risk factor: prevalence, the "oracle" AUC (10-fold CV logistic regression on
the six target clinical indices the generator applied the risk-factor effects to, regenerated from
the cohort seed: what the generator put in, as far as a linear model sees it), the manual and
automated atlas AUCs with bootstrap CIs, and DeLong's p (from ``RESULTS/stats``); then the
automated-vs-manual agreement of the clinical measures and the exams that failed, by reason.
The paper's claim to reproduce: no significant DeLong difference for most risk factors.

Either protocol (legacy MESA GRE ``SYN<seed>-<index>``, clinical ``CLN<seed>-<index>``) or a cohort
that mixes them: each exam's protocol is read from its label in ``truth/subjects.parquet`` and its
subject redrawn from that protocol generator's subject stream.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.core.ids import exam_id  # noqa: E402
from cmr_atlas.stats.auc import cv_auc  # noqa: E402
from cmr_atlas.synth import calibration as cal  # noqa: E402
from cmr_atlas.synth.anatomy import MYOCARDIAL_DENSITY_G_PER_ML  # noqa: E402
from cmr_atlas.synth.clinical import cohort as clinical  # noqa: E402
from cmr_atlas.synth.subjects import sample_subjects  # noqa: E402

MEASURES = ("edv_ml", "esv_ml", "ef_pct", "lv_mass_g")


def _mesa_subject_stream(seed: int, index: int) -> np.random.Generator:
    # cmr_atlas.synth.mesa.cohort.generate_exam: the first of six spawned streams is the subject's
    return np.random.default_rng(np.random.SeedSequence([seed, index]).spawn(6)[0])


def _clinical_subject_stream(seed: int, index: int) -> np.random.Generator:
    return clinical.exam_streams(seed, index)["subject"]


PROTOCOLS = {"SYN": "mesa", clinical.LABEL_PREFIX: "clinical"}  # exam label prefix -> protocol
# protocol -> the generator's subject stream of exam (seed, index)
SUBJECT_STREAMS: dict[str, Callable[[int, int], np.random.Generator]] = {
    "mesa": _mesa_subject_stream, "clinical": _clinical_subject_stream}
LABEL = re.compile(rf"({'|'.join(PROTOCOLS)})(\d+)-(\d+)")


def parse_label(label: str) -> tuple[str, int, int]:
    """(protocol, seed, index) of a synthetic exam label."""
    m = LABEL.fullmatch(str(label))
    if not m:
        raise SystemExit(f"{label!r} is not a synthetic exam label ({' or '.join(PROTOCOLS)}<seed>-<index>)")
    return PROTOCOLS[m[1]], int(m[2]), int(m[3])


def redraw_subject(label: str, mi_fraction: float) -> pd.Series:
    """The subject row (covariates + target indices) the generator of ``label``'s protocol drew."""
    protocol, seed, index = parse_label(label)
    return sample_subjects(SUBJECT_STREAMS[protocol](seed, index), 1, mi_fraction).iloc[0]


def _differs(a: pd.Series, b: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        return not np.allclose(a.to_numpy(float), b.to_numpy(float), equal_nan=True)
    return not a.astype(str).reset_index(drop=True).equals(b.astype(str).reset_index(drop=True))


def generator_targets(subjects: pd.DataFrame, mi_fraction: float) -> pd.DataFrame:
    """Target indices of each truth subject, redrawn from its exam label's (seed, index) stream
    exactly as its protocol's generator draws them; every covariate the truth table shares with
    the redraw must agree (else the cohort was made with another ``--mi-fraction``)."""
    redrawn = pd.DataFrame([redraw_subject(label, mi_fraction) for label in subjects["exam_id"]])
    redrawn = redrawn.reset_index(drop=True)
    shared = [c for c in redrawn.columns if c in subjects.columns and not c.startswith("target_")]
    bad = [c for c in shared if _differs(redrawn[c], subjects[c].reset_index(drop=True))]
    if bad:
        raise SystemExit(f"redrawn subjects differ from truth/subjects.parquet in {', '.join(bad)}: "
                         "wrong --mi-fraction for this cohort?")
    return redrawn


def true_measures(truth_dir: Path) -> pd.DataFrame:
    """Per exam label, the generator's true EDV, ESV, EF and mass at the cine's ED and ES frames
    (``truth/volumes``, which both protocols write; mass from the ED myocardial volume)."""
    v = pd.read_parquet(truth_dir / "volumes.parquet")
    ed = v[v["phase"] == "ED"].set_index("exam_id")
    es = v[v["phase"] == "ES"].set_index("exam_id")
    out = pd.DataFrame({"edv_ml": ed["volume_ml"], "esv_ml": es["volume_ml"].reindex(ed.index),
                        "lv_mass_g": MYOCARDIAL_DENSITY_G_PER_ML * ed["myo_volume_ml"]})
    out["ef_pct"] = 100 * (out["edv_ml"] - out["esv_ml"]) / out["edv_ml"]
    return out.rename_axis("exam_id").reset_index()


def print_failures(status: pd.DataFrame) -> None:
    """Exams not ok in any per-exam stage (ingest ... tissue), by stage and QC reason."""
    bad = status[status["status"] != "ok"]
    print(f"exams not ok in some stage: {bad['exam_id'].nunique()} of {status['exam_id'].nunique()}")
    if len(bad):
        print(bad.groupby(["stage", "status", "qc_reason"], dropna=False).size().rename("exams").to_string())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True, help="synthetic cohort folder (truth/subjects.parquet)")
    ap.add_argument("--results", required=True, help="the workflow's results folder for that cohort")
    ap.add_argument("--mi-fraction", type=float, default=0.0, help="as given to cmr-atlas synth")
    ap.add_argument("--exam-id-key", default="cmr-atlas-demo-key", help="the workflow's exam_id_key")
    a = ap.parse_args()
    res = Path(a.results)
    subjects = pd.read_parquet(Path(a.cohort) / "truth/subjects.parquet")
    targets = generator_targets(subjects, a.mi_fraction)
    x = targets[[f"target_{k}" for k in cal.INDEX_NAMES]].to_numpy(float)
    auc = pd.read_parquet(res / "stats/risk_factor_auc.parquet")
    delong = pd.read_parquet(res / "stats/delong.parquet").set_index("risk_factor")
    exams = pd.read_parquet(res / "exams.parquet")
    measures = pd.read_parquet(res / "measures.parquet")
    model = measures[measures["method"] == "model"]

    protocols = subjects["exam_id"].map(lambda label: parse_label(label)[0]).value_counts()
    print(f"cohort: {len(subjects)} synthetic exams ({', '.join(f'{n} {p}' for p, n in protocols.items())}); "
          f"ingest ok {int((exams['status'] == 'ok').sum())}")
    print("fitted models by source and status (qc reasons of the others):")
    print(model.groupby(["source", "status"]).size().rename("exams").to_string())
    bad = model[model["status"] != "ok"]
    if len(bad):
        print(bad.groupby(["source", "qc_reason"]).size().rename("exams").to_string())
    print_failures(pd.read_parquet(res / "exam_status.parquet"))
    # every source's fitted-model measures against the generator's true values (Table 4 layout)
    truth = true_measures(Path(a.cohort) / "truth")
    key = dict(zip(subjects["exam_id"], subjects["study_instance_uid"]))
    truth["protocol"] = [parse_label(label)[0] for label in truth["exam_id"]]
    truth["exam_id"] = [exam_id(key[label], a.exam_id_key) for label in truth["exam_id"]]
    both = model[model["status"] == "ok"].merge(truth, on="exam_id", suffixes=("", "_true"))
    print("\nfitted model vs truth, r and mean difference (SD):")
    for (protocol, src), g in both.groupby(["protocol", "source"]):
        cells = []
        for k in MEASURES:
            d = g[k] - g[f"{k}_true"]
            cells.append(f"{k} {np.corrcoef(g[k], g[f'{k}_true'])[0, 1]:.3f}, {d.mean():+.1f} ({d.std():.1f})")
        print(f"  {protocol:8s} {src:7s} n={len(g)}: " + "; ".join(cells))
    print(f"\n{'risk factor':18s} {'prev':>5s} {'oracle':>7s} {'manual (95% CI)':>20s} {'auto (95% CI)':>20s} "
          f"{'n':>4s} {'DeLong p':>9s}")
    fmt = lambda r: f"{r.auc:.3f} ({r.ci_low:.2f}-{r.ci_high:.2f})"  # noqa: E731
    n_diff, notes = 0, []
    for rf in delong.index:
        y = subjects[rf].to_numpy(float)
        oracle = cv_auc(x, y, folds=10, seed=0, n_bootstrap=0).auc
        m = auc[(auc.risk_factor == rf) & (auc.source == "manual")].iloc[0]
        u = auc[(auc.risk_factor == rf) & (auc.source == "auto")].iloc[0]
        p = float(delong.loc[rf, "p"])
        n_diff += p < 0.05
        notes += [f"{rf} ({r.source}): {r.note}" for r in (m, u) if pd.isna(r.auc) and r.note]
        print(f"{rf:18s} {np.nanmean(y):5.2f} {oracle:7.3f} {fmt(m):>20s} {fmt(u):>20s} "
              f"{int(delong.loc[rf, 'n']):4d} {p:9.3f}")
    n_tested = int(delong["p"].notna().sum())
    print(f"significant DeLong differences (p < 0.05): {n_diff} of {n_tested} tested")
    print("".join(f"  no AUC: {n}\n" for n in notes), end="")
    agree = pd.read_parquet(res / "stats/measures_agreement.parquet")
    print("\nautomated vs manual clinical measures:")
    print(agree[["measure", "unit", "n", "correlation", "bias", "sd", "loa_low", "loa_high"]]
          .round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
