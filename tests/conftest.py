"""Fixtures shared by more than one test area: rings on oblique planes (nets/, cine/), LV
shape cohorts as ``shapes`` tables (cine/ atlas, report/) and the benchmark scripts as modules.

The builders take arguments, so each fixture returns its function (session scope: hypothesis
tests may use them).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from cmr_atlas.cine.atlas import SURFACES
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import ExamImages
from tests.shared import shared_folder


def _oblique_plane(centre=(10.0, -20.0, 30.0), spacing=(1.25, 1.4), shape=(96, 80)) -> SlicePlane:
    rc = np.array([0.8, 0.6, 0.0])
    cc = np.array([0.0, 0.0, -1.0])
    return SlicePlane.centred(np.array(centre), rc, cc, spacing, shape)


def _ring_image(plane: SlicePlane, centre_rc, r_in_mm, r_out_mm, rng=None):
    """Image with a bright disk (cavity) inside a dark ring (myocardium) on a mid-grey background."""
    rows, cols = plane.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    d = np.hypot((r - centre_rc[0]) * plane.pixel_spacing_mm[0], (c - centre_rc[1]) * plane.pixel_spacing_mm[1])
    img = np.full(plane.shape, 100.0)
    img[d < r_out_mm] = 30.0
    img[d < r_in_mm] = 200.0
    if rng is not None:
        img = img + rng.normal(0, 5, img.shape)
    return img.astype(np.float32)


def _circle_rc(centre_rc, radius_mm, plane, n=40):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre_rc[0] + radius_mm / plane.pixel_spacing_mm[0] * np.sin(a),
                     centre_rc[1] + radius_mm / plane.pixel_spacing_mm[1] * np.cos(a)], 1)


def _ring_exam(n_slices=3, n_frames=4, seed=0, noise=True) -> tuple[ExamImages, pd.DataFrame]:
    """A SAX stack of rings whose cavity shrinks over the frames, with truth-format contours."""
    rng = np.random.default_rng(seed)
    planes, sax, rows = [], [], []
    for s in range(n_slices):
        plane = _oblique_plane(centre=(10.0, -20.0 + 8 * s, 30.0))
        planes.append(plane)
        frames = []
        for t in range(n_frames):
            r_in = 18.0 - 2.0 * t if s < n_slices - 1 else 0.0
            ctr = ((plane.shape[0] - 1) / 2 + 2, (plane.shape[1] - 1) / 2 - 3)
            frames.append(_ring_image(plane, ctr, r_in, r_in + 8 if r_in else 0.0, rng if noise else None))
            if r_in:
                for surface, rad in (("endo", r_in), ("epi", r_in + 8)):
                    rc = _circle_rc(ctr, rad, plane)
                    xyz = plane.pixel_to_patient(rc)
                    for i, (p, q) in enumerate(zip(xyz, rc)):
                        rows.append({"exam_id": "X1", "observer": "truth", "view": "sax", "slice_index": s,
                                     "frame": t, "phase": {0: "ED", n_frames - 1: "ES"}.get(t),
                                     "surface": surface, "point_index": i, "x_mm": p[0], "y_mm": p[1],
                                     "z_mm": p[2], "row_px": q[0], "col_px": q[1]})
        sax.append(frames)
    images = ExamImages("X1", np.asarray(sax, np.float32), planes, np.arange(n_frames) * 40.0)
    return images, pd.DataFrame(rows)


def pytest_configure(config: pytest.Config) -> None:
    # under pytest-xdist (make test) each worker takes its share of the cores: workers each running
    # torch on every core would oversubscribe the machine and slow the network tests down
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def oblique_plane():
    """``oblique_plane(centre=..., spacing=..., shape=...) -> SlicePlane``."""
    return _oblique_plane


@pytest.fixture(scope="session")
def ring_exam():
    """``ring_exam(n_slices=3, n_frames=4, seed=0, noise=True) -> (ExamImages, contours)``."""
    return _ring_exam


# ---------------------------------------------------------------- LV shape cohorts (atlas, report)
NL = NC = 9  # small grid keeps tests fast; the code is the same for 29 x 29


def _lv_shape(length=80.0, radius=25.0, wall=10.0, es_factor=0.75, n_long=NL, n_circ=NC):
    """Half-ellipsoid LV-like surfaces (apex ring first), (4 N, 3) in SURFACES order."""
    u = np.linspace(0.05, 1.0, n_long)  # 0 near apex, 1 at base
    v = np.linspace(0, 2 * np.pi, n_circ, endpoint=False)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    blocks = []
    for phase, surf in SURFACES:
        f = 1.0 if phase == "ED" else es_factor
        r = radius * f + (wall if surf == "epi" else 0.0)
        L = length * (1.0 if phase == "ED" else 0.9) + (wall if surf == "epi" else 0.0)
        s = np.sin(uu * np.pi / 2)
        pts = np.stack([r * s * np.cos(vv), r * s * np.sin(vv), -L * np.cos(uu * np.pi / 2)], axis=-1)
        blocks.append(pts.reshape(-1, 3))
    return np.concatenate(blocks)


def _shape_cohort(n=12, seed=0, transform=True, effect=None):
    rng = np.random.default_rng(seed)
    pose = np.random.default_rng(seed + 1000)  # separate stream: same shapes with or without poses
    shapes, factors = [], []
    for _ in range(n):
        lat = rng.normal(size=2)
        s = _lv_shape(length=80 + 6 * lat[0], radius=25 + 3 * lat[1])
        if transform:
            R = Rotation.random(random_state=pose).as_matrix()
            s = s @ R.T + pose.normal(0, 50, 3)
        shapes.append(s)
        factors.append(lat)
    return np.stack(shapes), np.array(factors)


def _shape_table(shapes, source="auto", ids=None):
    rows = []
    n = shapes.shape[1] // 4
    for e, s in enumerate(shapes):
        for k, (phase, surf) in enumerate(SURFACES):
            b = s[k * n:(k + 1) * n]
            rows.append(pd.DataFrame({
                "exam_id": ids[e] if ids else f"E{e:03d}", "source": source, "phase": phase,
                "surface": surf, "point_index": np.arange(n), "x_mm": b[:, 0], "y_mm": b[:, 1],
                "z_mm": b[:, 2], "extra": 1}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="session")
def lv_shape():
    """``lv_shape(length=..., radius=..., wall=..., es_factor=..., n_long=..., n_circ=...)``."""
    return _lv_shape


@pytest.fixture(scope="session")
def shape_grid() -> tuple[int, int]:
    """(n_long, n_circ) of the shapes ``lv_shape`` and ``shape_cohort`` make by default."""
    return NL, NC


@pytest.fixture(scope="session")
def shape_cohort():
    """``shape_cohort(n=12, seed=0, transform=True) -> (shapes (n, 4N, 3), latent factors (n, 2))``."""
    return _shape_cohort


@pytest.fixture(scope="session")
def shape_table():
    """``shape_table(shapes, source="auto", ids=None)``: a ``shapes`` table of the given shapes."""
    return _shape_table


PACKAGE = Path(__file__).resolve().parents[1] / "cmr_atlas"


@pytest.fixture(scope="session")
def package_modules() -> dict[str, Path]:
    """``{dotted name below cmr_atlas: source path}`` of every module (a package by its folder,
    the package root as ``""``): what the source-reading checks (layers, defaults) walk."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


@pytest.fixture(scope="session")
def clinical_seed() -> int:
    """Seed of :func:`clinical_synth_cohort` (disjoint from training 91xxxx and demo seeds)."""
    return 86


@pytest.fixture(scope="session")
def clinical_synth_cohort(tmp_path_factory, clinical_seed) -> Path:
    """One generated clinical exam (every series type, two observers) written by the CLI, as a
    cohort folder (``dicom/``, ``truth/``); shared by the synth, ingest and workflow tests (the
    generator takes most of a minute per exam, so it is made once per run: :func:`shared_folder`)."""
    from cmr_atlas.cli import main

    def build(out: Path) -> None:
        assert main(["synth", "--protocol", "clinical", "--n-exams", "1", "--seed", str(clinical_seed),
                     "--observers", "2", "--out", str(out)]) == 0

    return shared_folder(tmp_path_factory, f"clinical_cohort_{clinical_seed}", build)


@pytest.fixture(scope="session")
def legacy_synth_cohort(tmp_path_factory) -> Path:
    """Two generated legacy MESA exams (seed 4, two observers) as a cohort folder, once per run;
    read-only: a test that adds to it copies it first."""
    from cmr_atlas.synth.mesa.cohort import generate_cohort

    return shared_folder(tmp_path_factory, "legacy_cohort_2x4", lambda out: generate_cohort(out, 2, seed=4, observers=2))


@pytest.fixture(scope="session")
def benchmark_module():
    """``load(name) -> module``: ``benchmarks/<name>.py`` imported as a module (the benchmarks are
    scripts, not a package; their own imports of sibling scripts need the folder on the path)."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    loaded: dict[str, ModuleType] = {}

    def load(name: str) -> ModuleType:
        if name not in loaded:
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(name, mod)  # dataclasses and pickles look their module up
            spec.loader.exec_module(mod)
            loaded[name] = mod
        return loaded[name]

    return load
