"""Shape atlas: generalised Procrustes alignment and PCA of fitted LV surfaces.

Shape vector of an exam (CAP practice, legacy-atlas paper section 2.5): the ED and ES endo- and
epicardial surfaces sampled at the same N points for every exam, concatenated in the order
ED-endo, ED-epi, ES-endo, ES-epi, so a shape is a (4N, 3) array in mm (N = 841 = 29 x 29 for the
fitted model's grid).  One rigid transform per exam moves all four surfaces together, so the
motion between ED and ES is kept.

Generalised Procrustes alignment (Gower 1975): centre every shape; align each to the current mean
with the Kabsch rotation (determinant forced to +1: never a reflection), optionally with a
least-squares scale; recompute the mean and repeat until its change (RMS per point, mm) is below
``tol`` or ``max_iter`` is reached.  The mean is aligned back onto the previous mean at each
iteration so the frame does not drift; with scaling the mean keeps the inputs' average centroid
size.  Then PCA by SVD of the centred aligned shape vectors.

``Atlas.save`` writes one npz with this layout (all float64 unless said):

    mean            (4N*3,)   mean shape vector, rows of (x, y, z) per point, surfaces in order
    modes           (K, 4N*3) unit principal directions (rows)
    variance        (K,)      variance of the scores along each mode (mm^2), ddof = 1
    variance_ratio  (K,)      share of the total variance
    scores          (E, K)    training exams' scores (mm)
    exam_ids        (E,)      str
    source          ()        str: auto or manual
    n_points        ()        int: points per surface (N)
    grid            (2,)      int: n_long, n_circ of the surface grid (0, 0 if not a grid)
    surfaces        (4,)      str: "ED-endo", "ED-epi", "ES-endo", "ES-epi"
    scaling         ()        bool: GPA with scaling
    total_variance  ()        total variance of the aligned shapes (mm^2)
    rms_to_mean     (E,)      RMS point distance of each training exam's aligned shape to the mean (mm)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core import vocab
from cmr_atlas.core.columns import ATLAS_SOURCE, EXAM_ID
from cmr_atlas.core.tables import Column, TableSchema, atomic_write_bytes, register

log = logging.getLogger(__name__)

SURFACES = tuple((p, s) for p in vocab.PHASES for s in vocab.SURFACES)  # blocks of a shape vector
SURFACE_NAMES = tuple(f"{p}-{s}" for p, s in SURFACES)
MAX_SCORE_COLUMNS = 20  # atlas/scores holds pc1..pc20; the npz holds every component

SCORES = register(TableSchema(
    name="atlas/scores",
    description=(
        "Principal-component scores of each exam's aligned shape (ED+ES, endo+epi) in its "
        "source's atlas. Wide: pc1..pc20 (mm); components beyond the atlas's K "
        "(config atlas.n_components, at most the exams - 1) are null; an atlas with more than 20 "
        "components keeps all of them in its npz (atlas/<source>.npz)."
    ),
    row="exam and atlas source",
    columns=(
        EXAM_ID,
        ATLAS_SOURCE,
        Column("rms_to_mean_mm", "float", "RMS point distance of the aligned shape to the atlas mean", "mm"),
        *(Column(f"pc{i}", "float", f"score on mode {i}", "mm") for i in range(1, MAX_SCORE_COLUMNS + 1)),
    ),
))

EXPLAINED_VARIANCE = register(TableSchema(
    name="atlas/explained_variance",
    description="Variance explained by each principal mode of each atlas.",
    row="atlas source and component",
    columns=(
        ATLAS_SOURCE,
        Column("component", "int", "mode number, 1-based", nullable=False),
        Column("variance", "float", "variance of the scores (ddof = 1)", "mm2"),
        Column("ratio", "float", "share of the total shape variance"),
        Column("cumulative", "float", "cumulative share up to this mode"),
        Column("n_exams", "int", "exams in the atlas"),
    ),
))

ATLAS_TABLES = (SCORES, EXPLAINED_VARIANCE)


# --------------------------------------------------------------------------------------------
# Shape vectors
# --------------------------------------------------------------------------------------------
@dataclass
class ShapeSet:
    """Shapes of one source: ``points`` (E, 4N, 3) in mm, rows in SURFACES order."""

    exam_ids: list[str]
    points: np.ndarray
    n_points: int
    excluded: dict[str, str]  # exam_id -> reason


def shape_vectors(shapes: pd.DataFrame, source: str, n_points: int | None = None) -> ShapeSet:
    """Build (E, 4N, 3) arrays of one source from a long ``shapes`` table.

    Exams with a missing surface, a wrong point count or non-finite coordinates are excluded with
    a reason (never an exception): one bad exam never stops the atlas.
    """
    need = {"exam_id", "source", "phase", "surface", "point_index", "x_mm", "y_mm", "z_mm"}
    miss = need - set(shapes.columns)
    if miss:
        raise ValueError(f"shapes table lacks columns {sorted(miss)}")
    df = shapes[shapes["source"] == source]
    if n_points is None:
        n_points = int(df["point_index"].max()) + 1 if len(df) else 0
    # Vectorised: a complete exam has exactly one finite row per (surface, point); the slow
    # per-exam path only runs to word the reason for the (few) incomplete ones.
    sidx = pd.Series(-1, index=df.index)
    for k, (phase, surf) in enumerate(SURFACES):
        sidx[(df["phase"] == phase).to_numpy() & (df["surface"] == surf).to_numpy()] = k
    pi = df["point_index"].to_numpy()
    work = pd.DataFrame({"exam_id": df["exam_id"].astype(str).to_numpy(), "s": sidx.to_numpy(), "p": pi,
                         "x": df["x_mm"].to_numpy(float), "y": df["y_mm"].to_numpy(float),
                         "z": df["z_mm"].to_numpy(float)})
    work = work[(work["s"] >= 0) & (work["p"] >= 0) & (work["p"] < n_points)]
    work = work.sort_values(["exam_id", "s", "p"], kind="stable")
    dup = work.duplicated(["exam_id", "s", "p"])
    finite = np.isfinite(work[["x", "y", "z"]].to_numpy()).all(axis=1)
    stats = pd.DataFrame({"n": 1, "dup": dup.to_numpy(), "bad": ~finite}, index=work["exam_id"].to_numpy())
    per = stats.groupby(level=0).agg({"n": "sum", "dup": "any", "bad": "any"})
    complete = per.index[(per["n"] == 4 * n_points) & ~per["dup"] & ~per["bad"]]
    all_ids = sorted(set(df["exam_id"].astype(str)))
    excluded: dict[str, str] = {}
    for exam in all_ids:
        if exam in complete:
            continue
        g = work[work["exam_id"] == exam]
        reason = "incomplete"
        for k, name in enumerate(SURFACE_NAMES):
            gs = g[g["s"] == k]
            if gs["p"].duplicated().any():
                reason = f"{name}: duplicate point indices"
                break
            if gs["p"].nunique() != n_points:
                reason = f"{name}: {gs['p'].nunique()} of {n_points} points"
                break
            if not np.isfinite(gs[["x", "y", "z"]].to_numpy()).all():
                reason = f"{name}: non-finite coordinates"
                break
        excluded[exam] = reason
    keep = work[work["exam_id"].isin(set(complete))]
    ids = sorted(set(complete))
    pts = keep[["x", "y", "z"]].to_numpy().reshape(len(ids), 4 * n_points, 3) if ids \
        else np.empty((0, 4 * n_points, 3))
    if excluded:
        log.warning("atlas %s: %d exams excluded (incomplete shapes)", source, len(excluded))
    return ShapeSet(ids, pts, n_points, excluded)


# --------------------------------------------------------------------------------------------
# Procrustes
# --------------------------------------------------------------------------------------------
def kabsch(source: np.ndarray, target: np.ndarray, scaling: bool) -> tuple[np.ndarray, float]:
    """Rotation R (det +1) and scale s minimising ||s (source_c) R^T - target_c|| for centred
    (P, 3) arrays.  ``s`` is 1 unless ``scaling``."""
    h = source.T @ target
    u, sv, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    D = np.diag([1.0, 1.0, d])
    r = vt.T @ D @ u.T
    s = 1.0
    if scaling:
        ss = float((source**2).sum())
        s = float((sv * np.diag(D)).sum() / ss) if ss > 0 else 1.0
    return r, s


@dataclass
class GPAResult:
    aligned: np.ndarray  # (E, P, 3)
    mean: np.ndarray  # (P, 3), centred
    rotations: np.ndarray  # (E, 3, 3): aligned = s * (x - t) @ R.T
    translations: np.ndarray  # (E, 3): centroid of the input
    scales: np.ndarray  # (E,)
    n_iter: int
    converged: bool


def generalized_procrustes(
    shapes: np.ndarray, scaling: bool, tol: float = 1e-6, max_iter: int = 100
) -> GPAResult:
    """Generalised Procrustes alignment of (E, P, 3) point sets (see the module docstring)."""
    x = np.asarray(shapes, dtype=float)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[0] < 1:
        raise ValueError(f"shapes must have shape (E, P, 3) with E >= 1, got {x.shape}")
    t = x.mean(axis=1)
    xc = x - t[:, None, :]
    size0 = float(np.sqrt((xc**2).sum(axis=(1, 2))).mean())
    mean = xc[0].copy()
    E = x.shape[0]
    rots = np.tile(np.eye(3), (E, 1, 1))
    scales = np.ones(E)
    aligned = xc.copy()
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        for e in range(E):
            r, s = kabsch(xc[e], mean, scaling)
            rots[e], scales[e] = r, s
            aligned[e] = s * xc[e] @ r.T
        new = aligned.mean(axis=0)
        new -= new.mean(axis=0)
        r, _ = kabsch(new, mean, scaling=False)  # keep the frame of the previous mean
        new = new @ r.T
        if scaling:
            sz = float(np.sqrt((new**2).sum()))
            if sz > 0:
                new *= size0 / sz
        change = float(np.sqrt(((new - mean) ** 2).sum(axis=1).mean()))
        mean = new
        if change < tol:
            converged = True
            break
    # Final alignment onto the converged mean.
    for e in range(E):
        r, s = kabsch(xc[e], mean, scaling)
        rots[e], scales[e] = r, s
        aligned[e] = s * xc[e] @ r.T
    if not converged:
        log.warning("GPA did not converge in %d iterations (tol %.1e mm)", max_iter, tol)
    return GPAResult(aligned, mean, rots, t, scales, it, converged)


# --------------------------------------------------------------------------------------------
# Atlas
# --------------------------------------------------------------------------------------------
@dataclass
class Atlas:
    source: str
    mean: np.ndarray  # (4N*3,)
    modes: np.ndarray  # (K, 4N*3)
    variance: np.ndarray  # (K,)
    variance_ratio: np.ndarray  # (K,)
    scores: np.ndarray  # (E, K)
    exam_ids: list[str]
    n_points: int
    grid: tuple[int, int]
    scaling: bool
    total_variance: float
    rms_to_mean: np.ndarray  # (E,)

    @property
    def n_components(self) -> int:
        return int(self.modes.shape[0])

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.variance)

    def mean_points(self) -> np.ndarray:
        return self.mean.reshape(-1, 3)

    def mode_shape(self, mode: int, n_sd: float) -> np.ndarray:
        """(4N, 3) points of mean + n_sd * SD * mode (``mode`` 1-based)."""
        k = mode - 1
        return (self.mean + n_sd * self.sd[k] * self.modes[k]).reshape(-1, 3)

    def surface(self, points: np.ndarray, phase: str, surface: str) -> np.ndarray:
        """The (N, 3) block of one surface out of a (4N, 3) shape."""
        i = SURFACES.index((phase, surface))
        return points[i * self.n_points:(i + 1) * self.n_points]

    def align(self, shape: np.ndarray) -> np.ndarray:
        """Rigidly align one (4N, 3) shape to the atlas mean (with scale if the atlas was built so)."""
        x = np.asarray(shape, dtype=float)
        if x.shape != (4 * self.n_points, 3):
            raise ValueError(f"shape must be ({4 * self.n_points}, 3), got {x.shape}")
        xc = x - x.mean(axis=0)
        r, s = kabsch(xc, self.mean_points(), self.scaling)
        return s * xc @ r.T

    def project(self, shapes: np.ndarray) -> np.ndarray:
        """Scores of new exams: align each (4N, 3) shape to the mean, then project on the modes."""
        x = np.asarray(shapes, dtype=float)
        if x.ndim == 2:
            x = x[None]
        aligned = np.stack([self.align(s).ravel() for s in x])
        return (aligned - self.mean) @ self.modes.T

    def save(self, path: str | Path) -> Path:
        import io

        buf = io.BytesIO()
        np.savez_compressed(
            buf, mean=self.mean, modes=self.modes, variance=self.variance,
            variance_ratio=self.variance_ratio, scores=self.scores,
            exam_ids=np.array(self.exam_ids, dtype=str), source=np.array(self.source),
            n_points=np.array(self.n_points), grid=np.array(self.grid, dtype=int),
            surfaces=np.array(SURFACE_NAMES), scaling=np.array(self.scaling),
            total_variance=np.array(self.total_variance), rms_to_mean=self.rms_to_mean,
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Atlas":
        with np.load(path, allow_pickle=False) as z:
            if tuple(z["surfaces"]) != SURFACE_NAMES:
                raise ValueError(f"{path}: unexpected surface order {tuple(z['surfaces'])}")
            return cls(
                source=str(z["source"]), mean=z["mean"], modes=z["modes"], variance=z["variance"],
                variance_ratio=z["variance_ratio"], scores=z["scores"],
                exam_ids=[str(e) for e in z["exam_ids"]], n_points=int(z["n_points"]),
                grid=tuple(int(g) for g in z["grid"]), scaling=bool(z["scaling"]),
                total_variance=float(z["total_variance"]), rms_to_mean=z["rms_to_mean"],
            )


def _top_singular(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` singular values and right singular vectors (rows) of ``x`` (E, D).

    With fewer exams than coordinates (the usual case: D = 10092) the E x E Gram matrix is
    eigen-decomposed and the top-k subspace refined by an SVD of its k x D projection, which is
    exact up to round-off and far cheaper than a full SVD of x (e.g. 400 exams: 0.6 s instead of
    17 s on the 2-core CI machine).  Otherwise a plain thin SVD.
    """
    E, D = x.shape
    if E <= D:
        w, u = np.linalg.eigh(x @ x.T)
        top = u[:, np.argsort(w)[::-1][:k]]
        _u, sv, vt = np.linalg.svd(top.T @ x, full_matrices=False)
        return sv, vt
    _u, sv, vt = np.linalg.svd(x, full_matrices=False)
    return sv[:k], vt[:k]


def grid_shape(n_points: int) -> tuple[int, int]:
    """(n_long, n_circ) of a square surface grid (29 x 29 for 841 points); (0, 0) otherwise."""
    r = int(round(math.sqrt(n_points)))
    return (r, r) if r * r == n_points and r >= 2 else (0, 0)


def build_atlas(
    shapes: ShapeSet | np.ndarray,
    source: str = "auto",
    exam_ids: list[str] | None = None,
    *,
    n_components: int,
    scaling: bool,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> Atlas:
    """GPA + PCA of (E, 4N, 3) shapes; K = min(n_components, E - 1) (PCA of E shapes has at most
    E - 1 non-trivial modes).  ``n_components`` and ``scaling``: the config's ``atlas`` block."""
    if isinstance(shapes, ShapeSet):
        exam_ids, pts, n_points = shapes.exam_ids, shapes.points, shapes.n_points
    else:
        pts = np.asarray(shapes, dtype=float)
        n_points = pts.shape[1] // 4
        exam_ids = list(exam_ids) if exam_ids is not None else [str(i) for i in range(pts.shape[0])]
    E = pts.shape[0]
    if E < 3:
        raise ValueError(f"an atlas needs at least 3 exams, got {E} ({source})")
    if pts.shape[1] != 4 * n_points:
        raise ValueError(f"shapes must have 4N rows (ED/ES endo/epi), got {pts.shape[1]}")
    gpa = generalized_procrustes(pts, scaling=scaling, tol=tol, max_iter=max_iter)
    data = gpa.aligned.reshape(E, -1)
    mean = data.mean(axis=0)
    centred = data - mean
    K = int(min(n_components, E - 1))
    sv, vt = _top_singular(centred, K)
    total = float((centred**2).sum() / (E - 1))
    modes = vt[:K]
    # Sign convention (stable across runs): the largest-magnitude loading of each mode is positive.
    signs = np.sign(modes[np.arange(K), np.abs(modes).argmax(axis=1)])
    signs[signs == 0] = 1.0
    modes = modes * signs[:, None]
    scores = centred @ modes.T
    variance = sv[:K] ** 2 / (E - 1)
    ratio = variance / total if total > 0 else np.zeros(K)
    log.info(
        "atlas %s: %d exams, %d points/surface, GPA %d iterations (%s), %d modes explain %.1f %%",
        source, E, n_points, gpa.n_iter, "converged" if gpa.converged else "NOT converged", K,
        100 * ratio.sum(),
    )
    rms = np.sqrt((centred.reshape(E, -1, 3) ** 2).sum(axis=2).mean(axis=1))
    return Atlas(source, mean, modes, variance, ratio, scores, list(exam_ids), n_points,
                 grid_shape(n_points), scaling, total, rms)


def scores_frame(atlas: Atlas) -> pd.DataFrame:
    """atlas/scores rows of the atlas's training exams."""
    df = pd.DataFrame({"exam_id": atlas.exam_ids, "source": atlas.source,
                       "rms_to_mean_mm": np.asarray(atlas.rms_to_mean, dtype=float)})
    for i in range(1, MAX_SCORE_COLUMNS + 1):
        df[f"pc{i}"] = atlas.scores[:, i - 1] if i <= atlas.n_components else np.nan
    if atlas.n_components > MAX_SCORE_COLUMNS:
        log.warning("atlas %s: %d components, atlas/scores keeps the first %d (all in the npz)",
                    atlas.source, atlas.n_components, MAX_SCORE_COLUMNS)
    return df


def explained_variance_frame(atlas: Atlas) -> pd.DataFrame:
    return pd.DataFrame({
        "source": atlas.source,
        "component": np.arange(1, atlas.n_components + 1),
        "variance": atlas.variance,
        "ratio": atlas.variance_ratio,
        "cumulative": np.cumsum(atlas.variance_ratio),
        "n_exams": len(atlas.exam_ids),
    })


@dataclass
class AtlasBuild:
    atlases: dict[str, Atlas]
    excluded: dict[str, dict[str, str]]  # source -> exam_id -> reason
    notes: list[str]


def build_atlases(
    shapes: pd.DataFrame,
    exams: pd.DataFrame | None = None,
    *,
    n_components: int,
    scaling: bool,
    sources: tuple[str, ...] = ("auto", "manual"),
) -> AtlasBuild:
    """One atlas per source present in ``shapes``, on the same exams when there are several
    (the intersection of complete shapes, restricted to exams with status 'ok' when ``exams`` is
    given), so that their scores can be compared subject by subject (Table 5)."""
    sets, notes = {}, []
    present = [s for s in sources if s in set(shapes["source"].unique())]
    n_points = int(shapes["point_index"].max()) + 1 if len(shapes) else 0
    for src in present:
        sets[src] = shape_vectors(shapes, src, n_points)
    for src in sources:
        if src not in present:
            notes.append(f"no {src} shapes: no {src} atlas")
    ok_ids = None
    if exams is not None and "status" in exams:
        ok_ids = set(exams.loc[exams["status"] == "ok", "exam_id"].astype(str))
    common = None
    for s in sets.values():
        ids = set(s.exam_ids) if ok_ids is None else set(s.exam_ids) & ok_ids
        common = ids if common is None else common & ids
    excluded = {src: dict(s.excluded) for src, s in sets.items()}
    atlases = {}
    for src, s in sets.items():
        keep = [i for i, e in enumerate(s.exam_ids) if e in common]
        for e in s.exam_ids:
            if e not in common:
                excluded[src][e] = ("exam status not ok" if ok_ids is not None and e not in ok_ids
                                    else "not complete in every source")
        sub = ShapeSet([s.exam_ids[i] for i in keep], s.points[keep], s.n_points, {})
        if len(sub.exam_ids) < 3:
            notes.append(f"{src}: only {len(sub.exam_ids)} exams with complete shapes, no atlas")
            continue
        atlases[src] = build_atlas(sub, src, n_components=n_components, scaling=scaling)
    if len(atlases) > 1:
        notes.append(f"atlases built on the same {len(common)} exams")
    return AtlasBuild(atlases, excluded, notes)


# --------------------------------------------------------------------------------------------
# Surfaces
# --------------------------------------------------------------------------------------------
def grid_faces(n_long: int, n_circ: int, points: np.ndarray | None = None) -> np.ndarray:
    """Triangles (M, 3) of a n_long x n_circ grid (point = i_long * n_circ + i_circ): two per quad
    between consecutive rings, closed around the circumference unless the first and last column
    coincide (then the seam is already closed)."""
    wrap = True
    if points is not None:
        p = np.asarray(points).reshape(n_long, n_circ, 3)
        gap = np.linalg.norm(p[:, 0] - p[:, -1], axis=1).mean()
        step = np.linalg.norm(p[:, 1] - p[:, 0], axis=1).mean()
        wrap = not (gap < 1e-6 * max(step, 1e-12) or gap < 1e-9)
    faces = []
    ncols = n_circ if wrap else n_circ - 1
    for i in range(n_long - 1):
        for j in range(ncols):
            jn = (j + 1) % n_circ
            a, b = i * n_circ + j, i * n_circ + jn
            c, d = (i + 1) * n_circ + j, (i + 1) * n_circ + jn
            faces.append((a, b, d))
            faces.append((a, d, c))
    f = np.asarray(faces, dtype=np.int64)
    if points is not None:
        # A collapsed ring (the apex of the fitted grid is one point repeated) gives zero-area
        # triangles: drop them so renders and VTP consumers see a clean surface.
        p = np.asarray(points, dtype=float)
        area = np.linalg.norm(np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]), axis=1)
        f = f[area > 1e-12 * max(float(np.ptp(p, axis=0).max()) ** 2, 1e-12)]
    return f


def surface_polydata(points: np.ndarray, grid: tuple[int, int]):
    """A pyvista PolyData of one (N, 3) surface, triangulated on its grid."""
    import pyvista as pv

    n_long, n_circ = grid
    if n_long * n_circ != len(points):
        return pv.PolyData(np.asarray(points, dtype=float))
    f = grid_faces(n_long, n_circ, points)
    faces = np.hstack([np.full((len(f), 1), 3), f]).ravel()
    return pv.PolyData(np.asarray(points, dtype=float), faces)


def write_vtp_surfaces(atlas: Atlas, out_dir: str | Path, n_modes: int, n_sd: float = 2.0) -> list[Path]:
    """Mean shape and mean +- n_sd SD of the first modes as VTP files, one per surface:
    ``<source>_mean_<ED-endo>.vtp``, ``<source>_mode1_plus2sd_<ED-endo>.vtp``, ..."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shapes = [("mean", atlas.mean_points())]
    for m in range(1, min(n_modes, atlas.n_components) + 1):
        shapes.append((f"mode{m}_plus{n_sd:g}sd", atlas.mode_shape(m, n_sd)))
        shapes.append((f"mode{m}_minus{n_sd:g}sd", atlas.mode_shape(m, -n_sd)))
    paths = []
    for label, pts in shapes:
        for phase, surf in SURFACES:
            poly = surface_polydata(atlas.surface(pts, phase, surf), atlas.grid)
            p = out / f"{atlas.source}_{label}_{phase}-{surf}.vtp"
            tmp = p.with_name(f".{p.name}.tmp.vtp")
            poly.save(str(tmp))
            tmp.replace(p)
            paths.append(p)
    return paths
