"""The motion atlas: phase-normalised shape trajectories, one Procrustes transform per exam, PCA.

Each exam's per-frame fits (:class:`cmr_atlas.cine.lvmodel.cycle.CycleFit`, endo and epi on the
fixed 29 x 29 grid) are resampled to ``N_PHASES`` phases of a common cycle by a piecewise-linear
time warp: phases ``0 .. ES_PHASE`` span ED to ES (systole), the rest ES to the last acquired frame
(diastole; the legacy acquisitions end at 88-98 % of R-R, so the cycle is not closed), linear
interpolation between the bracketing frames.  Table ``motion_shapes`` holds them (model-local
coordinates).  The atlas aligns each exam's whole trajectory with one rigid transform (the ED+ES
atlas's generalised Procrustes, :func:`cmr_atlas.cine.atlas.generalized_procrustes`), so motion
relative to ED is kept, and takes the PCA of the aligned trajectories: modes of shape *and*
motion, scores per exam (``atlas/motion_scores``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.atlas import MAX_SCORE_COLUMNS, _top_singular, generalized_procrustes
from cmr_atlas.cine.lvmodel.cycle import CycleFit
from cmr_atlas.core.columns import ATLAS_SOURCE, EXAM_ID, GUIDE_POINT_SOURCE, LOCAL_XYZ_MM, SURFACE
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import SURFACES  # endo, epi: the order of a trajectory's points

log = logging.getLogger(__name__)

N_PHASES = 12
ES_PHASE = 4  # phases 0..4: ED to ES; 4..11: ES to the last acquired frame

MOTION_SHAPES = register(TableSchema(
    name="motion_shapes", row="exam, source, cycle phase, surface and point",
    description=(
        f"Each exam's fitted LV surfaces at {N_PHASES} phases of a common cycle (phase 0 = ED, "
        f"{ES_PHASE} = ES, {N_PHASES - 1} = the last acquired frame; piecewise-linear in time "
        "between them), interpolated between the per-frame fits; model-local coordinates and grid "
        "of `shapes`. The input of the motion atlas (docs/motion.md)."
    ),
    columns=(
        EXAM_ID, GUIDE_POINT_SOURCE,
        Column("phase_index", "int", f"0..{N_PHASES - 1}: 0 ED, {ES_PHASE} ES", nullable=False),
        SURFACE,
        Column("point_index", "int", "grid index (as in `shapes`)", nullable=False),
        *LOCAL_XYZ_MM,
    ),
))

MOTION_SCORES = register(TableSchema(
    name="atlas/motion_scores", row="exam and atlas source",
    description=(
        "Scores of each exam's aligned shape trajectory (endo + epi at every phase of "
        "`motion_shapes`) on the motion atlas's principal modes (pc1..pc20; null beyond the "
        "atlas's number of modes)."
    ),
    columns=(EXAM_ID, ATLAS_SOURCE,
             Column("rms_to_mean_mm", "float", "RMS distance of the aligned trajectory to the mean", "mm"),
             *(Column(f"pc{i}", "float", f"score on motion mode {i}", "mm") for i in range(1, MAX_SCORE_COLUMNS + 1))),
))

MOTION_EXPLAINED_VARIANCE = register(TableSchema(
    name="atlas/motion_explained_variance", row="atlas source and component",
    description="Variance explained by each principal mode of the motion atlas.",
    columns=(ATLAS_SOURCE,
             Column("component", "int", "mode number, 1 = largest"),
             Column("variance", "float", "variance along the mode", "mm2"),
             Column("ratio", "float", "share of the total variance"),
             Column("cumulative", "float", "cumulative share"),
             Column("n_exams", "int", "exams in the atlas")),
))


def phase_times(t_ed: float, t_es: float, t_end: float, n_phases: int = N_PHASES, es_phase: int = ES_PHASE) -> np.ndarray:
    """Times (ms) of the common cycle's phases for one exam."""
    sys = t_ed + (t_es - t_ed) * np.arange(es_phase + 1) / es_phase
    dia = t_es + (t_end - t_es) * np.arange(1, n_phases - es_phase) / (n_phases - 1 - es_phase)
    return np.concatenate([sys, dia])


def phase_normalised(cyc: CycleFit, ed_frame: int, es_frame: int) -> np.ndarray | None:
    """(N_PHASES, 2 N, 3) endo + epi surfaces of one exam at the common phases; None when the
    cycle has no surfaces (``keep_surfaces``), ED/ES frames or frames after ES."""
    frames = [int(f) for f in cyc.frames if int(f) in cyc.surfaces and len(cyc.surfaces[int(f)]) == 2]
    if ed_frame not in frames or es_frame not in frames:
        return None
    t = {int(f): float(tm) for f, tm in zip(cyc.frames, cyc.time_ms)}
    frames = [f for f in frames if t[f] >= t[ed_frame]]
    if not frames or t[frames[-1]] <= t[es_frame]:
        return None
    times = np.array([t[f] for f in frames])
    surf = np.stack([np.concatenate([cyc.surfaces[f][s] for s in SURFACES]) for f in frames])
    out = []
    for tp in phase_times(t[ed_frame], t[es_frame], times[-1]):
        j = int(np.clip(np.searchsorted(times, tp), 1, len(times) - 1))
        a = float(np.clip((tp - times[j - 1]) / max(times[j] - times[j - 1], 1e-9), 0.0, 1.0))
        out.append((1 - a) * surf[j - 1] + a * surf[j])
    return np.stack(out)


def motion_shape_rows(exam_id: str, source: str, traj: np.ndarray) -> pd.DataFrame:
    """``motion_shapes`` rows of one exam's (N_PHASES, 2 N, 3) trajectory."""
    p, m, _ = traj.shape
    n = m // 2
    return pd.DataFrame({
        "exam_id": exam_id, "source": source, "phase_index": np.repeat(np.arange(p), m),
        "surface": np.tile(np.repeat(np.array(SURFACES), n), p), "point_index": np.tile(np.arange(n), 2 * p),
        "x_mm": traj[..., 0].ravel(), "y_mm": traj[..., 1].ravel(), "z_mm": traj[..., 2].ravel(),
    })[MOTION_SHAPES.column_names]


@dataclass
class MotionAtlas:
    source: str
    exam_ids: list[str]
    mean: np.ndarray  # (N_PHASES * 2N * 3,)
    modes: np.ndarray  # (K, N_PHASES * 2N * 3)
    variance: np.ndarray  # (K,)
    variance_ratio: np.ndarray  # (K,)
    scores: np.ndarray  # (E, K)
    rms_to_mean: np.ndarray  # (E,)
    n_phases: int
    n_points: int  # per surface

    def trajectory(self, mode: int | None = None, n_sd: float = 0.0) -> np.ndarray:
        """(n_phases, 2N, 3) mean trajectory, or mean + n_sd SD along ``mode`` (1-based)."""
        v = self.mean.copy()
        if mode is not None:
            v = v + n_sd * np.sqrt(self.variance[mode - 1]) * self.modes[mode - 1]
        return v.reshape(self.n_phases, 2 * self.n_points, 3)

    def save(self, path: str | Path) -> Path:
        np.savez_compressed(path, source=self.source, exam_ids=np.array(self.exam_ids), mean=self.mean,
                            modes=self.modes, variance=self.variance, variance_ratio=self.variance_ratio,
                            scores=self.scores, rms_to_mean=self.rms_to_mean,
                            shape=np.array([self.n_phases, self.n_points]))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "MotionAtlas":
        z = np.load(path, allow_pickle=False)
        n_phases, n_points = (int(v) for v in z["shape"])
        return cls(str(z["source"]), [str(e) for e in z["exam_ids"]], z["mean"], z["modes"], z["variance"],
                   z["variance_ratio"], z["scores"], z["rms_to_mean"], n_phases, n_points)


def trajectories(motion_shapes: pd.DataFrame, source: str) -> tuple[list[str], np.ndarray]:
    """(exam_ids, (E, N_PHASES * 2N, 3)) of the complete trajectories of one source."""
    df = motion_shapes[motion_shapes["source"] == source]
    if df.empty:
        return [], np.zeros((0, 0, 3))
    n = int(df["point_index"].max()) + 1
    per = N_PHASES * 2 * n
    df = df.assign(s=(df["surface"] == "epi").astype(int)).sort_values(["exam_id", "phase_index", "s", "point_index"])
    counts = df.groupby("exam_id").size()
    ok = counts.index[counts == per]
    df = df[df["exam_id"].isin(set(ok))]
    xyz = df[["x_mm", "y_mm", "z_mm"]].to_numpy(float).reshape(len(ok), per, 3)
    good = np.isfinite(xyz).all(axis=(1, 2))
    return [str(e) for e, g in zip(sorted(ok), good) if g], xyz[good]


def build_motion_atlas(motion_shapes: pd.DataFrame, source: str, *, n_components: int,
                       exam_ids: list[str] | None = None) -> MotionAtlas:
    """GPA (rigid: one transform per exam's whole trajectory) + PCA of one source's trajectories;
    ``exam_ids`` restricts it (e.g. to the ED+ES atlas's exams)."""
    ids, x = trajectories(motion_shapes, source)
    if exam_ids is not None:
        keep = [i for i, e in enumerate(ids) if e in set(exam_ids)]
        ids, x = [ids[i] for i in keep], x[keep]
    E = len(ids)
    if E < 3:
        raise ValueError(f"a motion atlas needs at least 3 exams with complete trajectories, got {E} ({source})")
    gpa = generalized_procrustes(x, scaling=False)
    data = gpa.aligned.reshape(E, -1)
    mean = data.mean(axis=0)
    centred = data - mean
    k = int(min(n_components, E - 1))
    sv, vt = _top_singular(centred, k)
    modes = vt[:k]
    signs = np.sign(modes[np.arange(k), np.abs(modes).argmax(axis=1)])
    signs[signs == 0] = 1.0
    modes = modes * signs[:, None]
    total = float((centred**2).sum() / (E - 1))
    variance = sv[:k] ** 2 / (E - 1)
    rms = np.sqrt((centred.reshape(E, -1, 3) ** 2).sum(axis=2).mean(axis=1))
    log.info("motion atlas %s: %d exams, %d modes explain %.1f %%", source, E, k, 100 * variance.sum() / max(total, 1e-12))
    return MotionAtlas(source, ids, mean, modes, variance, variance / total if total > 0 else np.zeros(k),
                       centred @ modes.T, rms, N_PHASES, x.shape[1] // (2 * N_PHASES))


def motion_tables(atlas: MotionAtlas) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``atlas/motion_scores``, ``atlas/motion_explained_variance``) rows of one motion atlas."""
    sc = pd.DataFrame({"exam_id": atlas.exam_ids, "source": atlas.source, "rms_to_mean_mm": atlas.rms_to_mean})
    for i in range(1, MAX_SCORE_COLUMNS + 1):
        sc[f"pc{i}"] = atlas.scores[:, i - 1] if i <= atlas.scores.shape[1] else np.nan
    ev = pd.DataFrame({"source": atlas.source, "component": np.arange(1, len(atlas.variance) + 1),
                       "variance": atlas.variance, "ratio": atlas.variance_ratio,
                       "cumulative": np.cumsum(atlas.variance_ratio), "n_exams": len(atlas.exam_ids)})
    return sc[MOTION_SCORES.column_names], ev[MOTION_EXPLAINED_VARIANCE.column_names]
