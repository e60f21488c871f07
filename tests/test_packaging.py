"""The built wheel works outside the checkout: installed into a fresh virtual environment and run
from another folder, `cmr-atlas --help`, `synth`, `config` and every stage's --help work (the
package reads nothing from the source tree; the config schema is package data)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv outside the checkout holding the wheel built from it; the project's
    dependencies are visible through a plain path line in a .pth file, which adds their folder but
    does not run the project's editable-install hook, so cmr_atlas comes from the wheel only."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"  # a copy of what the wheel is built from: the build leaves the checkout alone
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "cmr_atlas", src / "cmr_atlas", ignore=shutil.ignore_patterns("__pycache__"))
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", tmp / "wheels", "."], cwd=src))
    (wheel,) = (tmp / "wheels").glob("cmr_atlas-*.whl")
    venv = tmp / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp))
    py = venv / "bin" / "python"
    site = Path(_ok(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp)).strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _ok(_run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", wheel], cwd=tmp))
    shutil.rmtree(src)
    where = _ok(_run([py, "-c", "import cmr_atlas; print(cmr_atlas.__file__)"], cwd=tmp)).strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the checkout's
    return venv / "bin"


@pytest.fixture
def workdir(tmp_path) -> Path:
    assert not tmp_path.is_relative_to(REPO)
    return tmp_path


def test_help_and_every_stage_parser(installed, workdir):
    assert "synth" in _ok(_run([installed / "cmr-atlas", "--help"], cwd=workdir))
    # every subcommand's module imports and builds its parser from the installed package
    code = ("from cmr_atlas.cli import COMMANDS, main\n"
            "for name in COMMANDS:\n"
            "    try:\n        main([name, '--help'])\n"
            "    except SystemExit as e:\n        assert e.code == 0, name\n")
    _ok(_run([installed / "python", "-c", code], cwd=workdir))


def test_synth_one_exam(installed, workdir):
    _ok(_run([installed / "cmr-atlas", "synth", "--n-exams", "1", "--seed", "5", "--out", "X"], cwd=workdir))
    assert list((workdir / "X" / "dicom").iterdir())
    assert (workdir / "X" / "truth" / "subjects.parquet").is_file()


def test_config_validation(installed, workdir):
    cfg = {"cohort_dir": "c", "results_dir": "r", "exam_id_key": "a-long-enough-key"}
    (workdir / "ok.yaml").write_text(yaml.safe_dump(cfg))
    filled = yaml.safe_load(_ok(_run([installed / "cmr-atlas", "config", "ok.yaml"], cwd=workdir)))
    assert filled["stats"]["n_pcs"] >= 1 and filled["exam_id_key"] == cfg["exam_id_key"]
    (workdir / "bad.yaml").write_text(yaml.safe_dump({**cfg, "stats": {"n_pcs": 0}}))
    r = _run([installed / "cmr-atlas", "config", "bad.yaml"], cwd=workdir)
    assert r.returncode != 0 and "stats.n_pcs" in r.stderr, r.stderr
