"""Does motion add discrimination?  Risk-factor AUCs from the motion atlas's modes beside the ED+ES
atlas's, on the same exams and source (issue #17).

For each risk factor, three cross-validated logistic models (:func:`cmr_atlas.stats.risk_factors.
run_stats`, same folds, seed and bootstrap as the main table): the first ``n_pcs`` ED+ES modes
(``ed_es``), the first ``n_pcs`` motion modes (``motion``), and both (``ed_es+motion``); DeLong's
test (:func:`cmr_atlas.stats.delong.delong_test`) of each against ``ed_es`` on the out-of-fold
probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.stats.delong import delong_test
from cmr_atlas.stats.risk_factors import run_stats

MODE_SETS = ("ed_es", "motion", "ed_es+motion")

MOTION_AUC = register(TableSchema(
    name="stats/motion_auc", row="risk factor, atlas source and mode set",
    description=(
        "Cross-validated AUC of each risk factor from the ED+ES atlas modes (`ed_es`), the motion "
        "atlas modes (`motion`) and both, on the exams of both atlases of one source, with DeLong's "
        "test against `ed_es` (docs/motion.md)."
    ),
    columns=(
        Column("risk_factor", "str", "covariate name", nullable=False),
        Column("source", "str", "atlas source (auto or manual)", nullable=False),
        Column("modes", "str", "ed_es, motion or ed_es+motion", nullable=False),
        Column("k", "int", "modes used as predictors"),
        Column("auc", "float", "out-of-fold AUC"),
        Column("ci_low", "float", "bootstrap 95 % CI, lower"),
        Column("ci_high", "float", "bootstrap 95 % CI, upper"),
        Column("n", "int", "exams"),
        Column("n_positive", "int", "exams with the risk factor"),
        Column("p_vs_ed_es", "float", "DeLong p of this AUC against the ed_es AUC (same exams)"),
        Column("note", "str", "why a model was not evaluated"),
    ),
))


def _prefixed(scores: pd.DataFrame, prefix: str, n_pcs: int) -> pd.DataFrame:
    pcs = [f"pc{i}" for i in range(1, n_pcs + 1) if f"pc{i}" in scores and scores[f"pc{i}"].notna().any()]
    return scores[["exam_id", *pcs]].rename(columns={c: f"{prefix}{c}" for c in pcs})


def motion_auc(edes_scores: pd.DataFrame, motion_scores: pd.DataFrame, covariates: pd.DataFrame,
               risk_factors: list[str], *, n_pcs: int, folds: int, n_bootstrap: int,
               seed: int | None = None) -> pd.DataFrame:
    """``stats/motion_auc`` rows for every source present in both score tables."""
    rows = []
    for source in sorted(set(edes_scores["source"]) & set(motion_scores["source"])):
        a = _prefixed(edes_scores[edes_scores["source"] == source], "e", n_pcs)
        b = _prefixed(motion_scores[motion_scores["source"] == source], "m", n_pcs)
        both = a.merge(b, on="exam_id")
        parts = []
        for label, cols in (("ed_es", [c for c in a.columns if c != "exam_id"]),
                            ("motion", [c for c in b.columns if c != "exam_id"]),
                            ("ed_es+motion", [c for c in both.columns if c != "exam_id"])):
            sc = both[["exam_id", *cols]].copy()
            sc.columns = ["exam_id", *[f"pc{i + 1}" for i in range(len(cols))]]
            parts.append(sc.assign(source=label))
        out = run_stats(pd.concat(parts, ignore_index=True), covariates, risk_factors, n_pcs=2 * n_pcs,
                        folds=folds, n_bootstrap=n_bootstrap, seed=seed)
        auc = out.risk_factor_auc.rename(columns={"source": "modes"})
        oof = out.oof_predictions
        for r in auc.to_dict("records"):
            r.update(source=source, p_vs_ed_es=_delong_p(oof, r["risk_factor"], r["modes"]))
            rows.append(r)
    if not rows:
        return MOTION_AUC.empty()
    return pd.DataFrame(rows)[MOTION_AUC.column_names]


def _delong_p(oof: pd.DataFrame, rf: str, modes: str) -> float:
    if modes == "ed_es" or oof.empty:
        return np.nan
    g = oof[oof["risk_factor"] == rf]
    a = g[g["source"] == "ed_es"].set_index("exam_id")
    b = g[g["source"] == modes].set_index("exam_id")
    common = a.index.intersection(b.index)
    if common.size < 4:
        return np.nan
    try:
        return float(delong_test(a.loc[common, "outcome"].to_numpy(float), b.loc[common, "probability"].to_numpy(),
                                 a.loc[common, "probability"].to_numpy()).p)
    except ValueError:
        return np.nan


def write_motion_atlas(motion_shapes_path, edes_scores_path, covariates_path, *, scores_path, explained_variance_path,
                       auc_path, atlas_dir, n_components: int, risk_factors: list[str], n_pcs: int, folds: int,
                       n_bootstrap: int, seed: int | None = None) -> None:
    """The motion atlas of each source with trajectories (on the ED+ES atlas's exams), its tables and
    ``atlas/motion_<source>.npz``, and ``stats/motion_auc``; empty tables when there are too few
    exams (logged), never an exception for a small cohort."""
    import logging
    from pathlib import Path

    from cmr_atlas.cine.motion import MOTION_EXPLAINED_VARIANCE, MOTION_SCORES, build_motion_atlas, motion_tables
    from cmr_atlas.core.tables import write_table

    log = logging.getLogger(__name__)
    shapes = pd.read_parquet(motion_shapes_path)
    edes = pd.read_parquet(edes_scores_path)
    cov = pd.read_parquet(covariates_path)
    scores, evs = [], []
    for source in sorted(set(shapes["source"])):
        ids = edes.loc[edes["source"] == source, "exam_id"].astype(str).tolist() or None
        try:
            atlas = build_motion_atlas(shapes, source, n_components=n_components, exam_ids=ids)
        except ValueError as exc:
            log.warning("motion atlas %s: %s", source, exc)
            continue
        atlas.save(Path(atlas_dir) / f"motion_{source}.npz")
        sc, ev = motion_tables(atlas)
        scores.append(sc)
        evs.append(ev)
    sc = pd.concat(scores, ignore_index=True) if scores else MOTION_SCORES.empty()
    write_table(sc, scores_path, MOTION_SCORES)
    write_table(pd.concat(evs, ignore_index=True) if evs else MOTION_EXPLAINED_VARIANCE.empty(),
                explained_variance_path, MOTION_EXPLAINED_VARIANCE)
    auc = motion_auc(edes, sc, cov, risk_factors, n_pcs=n_pcs, folds=folds, n_bootstrap=n_bootstrap,
                     seed=seed) if len(sc) else MOTION_AUC.empty()
    write_table(auc, auc_path, MOTION_AUC)
