"""Scouts straight from the synthetic clinical generator, for training and benchmarking the
TI-selection networks (never read by the pipeline stage).

Each exam ``i`` of cohort ``seed`` renders only its TI scout(s), from the same random streams as
:func:`cmr_atlas.synth.clinical.cohort.generate_exam`, so a scout here is bit-identical to that
exam's scout series on disk.  Seeds: training 151000 (the model cards say so), the held-out
benchmark 152000, the tests' clinical cohort 86: disjoint.  ``amyloid_fraction`` turns that share
of subjects amyloid-like (the population has 2 %), so the networks and the benchmark see enough of
the hard "no clean null" case.

Labels (paper, section 2.2): observer 1's frame is the annotation (the paper's single reader);
observer 2's is kept to report inter-reader agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cmr_atlas.synth.clinical import cohort as C
from cmr_atlas.synth.clinical import scout as S
from cmr_atlas.synth.clinical.physiology import make_amyloid_like
from cmr_atlas.synth.parallel import map_exams
from cmr_atlas.tiscout.preprocess import network_frames
from cmr_atlas.tiscout.windows import order_scout

TRAIN_SEED = 151000
BENCHMARK_SEED = 152000
SIZES = (64, 32)
# truth for scoring the LGE audit: the operator's LGE TI and its error class, the null at LGE time,
# minutes from the scout's start to the LGE, field strength
AUDIT_KEYS = ("operator_ti_ms", "operator_error", "lge_null_ti_ms", "lge_minutes_after_scout", "field_t")  # network grids stored: the paper-like networks and the small default


@dataclass
class ScoutSet:
    """N scouts: raw frames, network frames per grid size, inversion times and truth."""

    raw: np.ndarray          # (N, T, R, C) uint16 as the scanner stores them
    spacing_mm: np.ndarray   # (N, 2)
    frames: dict             # size -> (N, T, size, size) float16
    ti_ms: np.ndarray        # (N, T)
    obs1: np.ndarray         # (N,) annotated null frame (observer 1)
    obs2: np.ndarray         # (N,) observer 2
    null_frame: np.ndarray   # (N,) frame nearest the physical null
    null_ti_ms: np.ndarray   # (N,) physical null
    amyloid: np.ndarray      # (N,) bool
    view: np.ndarray         # (N,) str
    subject: np.ndarray      # (N,) exam index: one subject may have a SAX and a 4-chamber scout
    audit: dict = field(default_factory=dict)  # AUDIT_KEYS -> (N,): the LGE truth of the exam

    def __len__(self) -> int:
        return len(self.obs1)

    def subset(self, idx) -> "ScoutSet":
        idx = np.asarray(idx)
        return ScoutSet(self.raw[idx], self.spacing_mm[idx], {k: v[idx] for k, v in self.frames.items()},
                        self.ti_ms[idx], self.obs1[idx], self.obs2[idx], self.null_frame[idx],
                        self.null_ti_ms[idx], self.amyloid[idx], self.view[idx], self.subject[idx],
                        {k: v[idx] for k, v in self.audit.items()})

    def save(self, path: str | Path) -> Path:
        arrays = {k: getattr(self, k) for k in ("raw", "spacing_mm", "ti_ms", "obs1", "obs2", "null_frame",
                                                "null_ti_ms", "amyloid", "view", "subject")}
        arrays.update({f"frames{k}": v for k, v in self.frames.items()})
        arrays.update(self.audit)
        np.savez_compressed(path, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "ScoutSet":
        z = np.load(path, allow_pickle=False)
        frames = {int(k[len("frames"):]): z[k] for k in z.files if k.startswith("frames")}
        return cls(z["raw"], z["spacing_mm"], frames, z["ti_ms"], z["obs1"], z["obs2"], z["null_frame"],
                   z["null_ti_ms"], z["amyloid"], z["view"], z["subject"],
                   {k: z[k] for k in AUDIT_KEYS if k in z.files})


def _exam_scouts(args: tuple) -> list[dict]:
    seed, index, amyloid_fraction = args
    rngs = C.exam_streams(seed, index)
    ctx = C.make_context(seed, index, 0.0, rngs)
    pick = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 999]))
    if not ctx.physiology.amyloid_like and pick.random() < amyloid_fraction:
        ctx = replace(ctx, physiology=make_amyloid_like(ctx.physiology, pick))
    part = S.render(ctx, rngs["scout"], 0)
    truth = part.truth["ti_scout"]
    out = []
    for series, (_, row) in zip(part.series, truth.iterrows()):
        ti = np.array([h["InversionTime"] for h in series.frame_headers[0]])
        s = order_scout(series.images[0], ti)
        inv = np.argsort(s.order)  # truth frames are indices as stored
        out.append({"raw": s.frames, "spacing_mm": np.array(series.planes[0].pixel_spacing_mm), "ti_ms": s.ti_ms,
                    "obs1": inv[int(row.obs1_frame)], "obs2": inv[int(row.obs2_frame)],
                    "null_frame": inv[int(row.null_frame)], "null_ti_ms": float(row.null_ti_ms),
                    "amyloid": bool(ctx.physiology.amyloid_like), "view": series.view, "subject": index,
                    "operator_ti_ms": float(row.operator_ti_ms), "operator_error": str(row.operator_error),
                    "lge_null_ti_ms": float(row.lge_null_ti_ms), "field_t": float(ctx.field_t),
                    "lge_minutes_after_scout": float(ctx.timeline.lge_min - series.start_min)})
    return out


def generate_scouts(seed: int, n_exams: int, amyloid_fraction: float = 0.0, jobs: int = 1,
                    sizes: tuple[int, ...] = SIZES) -> ScoutSet:
    """The scouts of exams ``0 .. n_exams-1`` of cohort ``seed`` (1-2 per exam)."""
    import logging

    rows = [r for rs in map_exams(_exam_scouts, [(seed, i, amyloid_fraction) for i in range(n_exams)], jobs,
                                  logging.getLogger(__name__)) for r in rs]
    col = lambda k: np.array([r[k] for r in rows])  # noqa: E731
    frames = {n: np.stack([network_frames(r["raw"], tuple(r["spacing_mm"]), n) for r in rows]).astype(np.float16)
              for n in sizes}
    return ScoutSet(np.stack([r["raw"] for r in rows]), col("spacing_mm"), frames, col("ti_ms"), col("obs1"),
                    col("obs2"), col("null_frame"), col("null_ti_ms"), col("amyloid"), col("view").astype(str),
                    col("subject"), {k: col(k) for k in AUDIT_KEYS})
