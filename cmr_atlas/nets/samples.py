"""Training samples as arrays: what a ``train data`` folder's ``seg.npz``, ``lm_lax.npz`` and
``lm_sax.npz`` hold, whichever pipeline built them (the cine training data,
:mod:`cmr_atlas.cine.training_data`; the perfusion slices' RV insertions,
:mod:`cmr_atlas.perfusion.insertion_net`), so the training loops read them alike.  Images are
stored float16 with an exam index, so splits are exam-wise."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmr_atlas.core.vocab import VIEWS

VIEW_CODES = {view: i for i, view in enumerate(VIEWS)}


@dataclass
class Samples:
    """``images (M, n, n)`` float16 whitened; ``labels (M, n, n)`` uint8 or ``points (M, K, 2)``
    float32 network (row, col) with NaN = absent; ``exam (M,)`` index into ``exam_ids``;
    ``view (M,)`` :data:`VIEW_CODES`; ``frame``/``slice_index`` for bookkeeping."""

    images: np.ndarray
    exam: np.ndarray
    view: np.ndarray
    exam_ids: list[str]
    labels: np.ndarray | None = None
    points: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray) -> "Samples":
        return Samples(self.images[idx], self.exam[idx], self.view[idx], self.exam_ids,
                       None if self.labels is None else self.labels[idx],
                       None if self.points is None else self.points[idx], dict(self.meta))

    def save(self, path: str | Path) -> Path:
        arrays = {"images": self.images, "exam": self.exam, "view": self.view,
                  "exam_ids": np.array(self.exam_ids)}
        if self.labels is not None:
            arrays["labels"] = self.labels
        if self.points is not None:
            arrays["points"] = self.points
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "Samples":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"], z["exam"], z["view"], [str(s) for s in z["exam_ids"]],
                       z["labels"] if "labels" in z.files else None,
                       z["points"] if "points" in z.files else None)

    @staticmethod
    def concat(parts: list["Samples"]) -> "Samples":
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no samples")
        ids: list[str] = []
        exams = []
        for p in parts:
            exams.append(p.exam + len(ids))
            ids += p.exam_ids
        lab = None if parts[0].labels is None else np.concatenate([p.labels for p in parts])
        pts = None if parts[0].points is None else np.concatenate([p.points for p in parts])
        return Samples(np.concatenate([p.images for p in parts]), np.concatenate(exams),
                       np.concatenate([p.view for p in parts]), ids, lab, pts)
