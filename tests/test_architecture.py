"""The package's shape, as docs/architecture.md draws it: import direction, no loose top-level
modules, no long functions.

Every module under cmr_atlas/ is parsed (not imported), so an import written inside a function
counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cmr_atlas"

# Lower layers never import higher ones; packages of one layer never import each other.
LAYERS = {
    "core": 0,
    "dicom": 1, "nets": 1,
    "synth": 2,
    "cine": 3, "perfusion": 3, "tiscout": 3,
    "stats": 4, "formats": 4,
    "report": 5,
    "cli": 6,
}
TOP_LEVEL = {"__init__.py", "__main__.py"}
ENTRY_POINT = {"__main__": "cli"}  # python -m cmr_atlas sits with the CLI

# Imports that break the rules today; other changes are removing them. This set must shrink to
# empty: delete an entry as soon as its import is gone (the test fails on a stale entry too).
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

MAX_FUNCTION_LINES = 80
# Numerical kernels that are one job and may stay long (named in docs/architecture.md).
LONG_KERNELS = {("cine.lvmodel.fit", "step")}
# Long functions being split by other changes; must shrink to empty like KNOWN_VIOLATIONS.
KNOWN_LONG: set[tuple[str, str]] = set()


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported(name: str, path: Path) -> set[str]:
    """Dotted names below cmr_atlas that the module imports, at any depth of its code."""
    package = name.split(".") if _is_package(path) else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(["cmr_atlas", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from cmr_atlas import cine` names a package: count each imported name as a module
            targets = [f"{module}.{a.name}" for a in node.names] if module == "cmr_atlas" else [module]
        else:
            continue
        for t in targets:
            if t == "cmr_atlas" or t.startswith("cmr_atlas."):
                below = t.removeprefix("cmr_atlas").lstrip(".")
                if below and not below.startswith("__"):  # the root itself holds only __version__
                    found.add(below)
    return found


def _pipeline(name: str) -> str:
    top = name.split(".")[0]
    return ENTRY_POINT.get(top, top)


def _violations(modules: dict[str, Path]) -> set[tuple[str, str]]:
    bad = set()
    for name, path in modules.items():
        if not name:
            continue
        src = _pipeline(name)
        for target in _imported(name, path):
            dst = _pipeline(target)
            if src == dst:
                continue
            if LAYERS[dst] >= LAYERS[src]:  # upward, or a sibling of the same layer
                bad.add((name, target))
    return bad


def test_every_package_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS), "place new packages in LAYERS and docs/architecture.md"


def test_no_module_at_the_package_top_level():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in TOP_LEVEL)
    assert not loose, f"move into a package folder: {loose}"


def test_imports_go_downward_and_never_to_a_sibling_pipeline(package_modules):
    found = _violations(package_modules)
    new = sorted(found - KNOWN_VIOLATIONS)
    assert not new, "upward or sibling imports (importer, imported):\n" + "\n".join(map(str, new))
    fixed = sorted(KNOWN_VIOLATIONS - found)
    assert not fixed, f"gone from the code: remove from KNOWN_VIOLATIONS: {fixed}"


def test_no_function_over_80_lines_outside_named_kernels(package_modules):
    long = set()
    for name, path in package_modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.add((name, node.name))
    new = sorted(long - LONG_KERNELS - KNOWN_LONG)
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines: split them: {new}"
    fixed = sorted(KNOWN_LONG - long)
    assert not fixed, f"split already: remove from KNOWN_LONG: {fixed}"


def test_the_checker_sees_every_kind_of_import(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("import cmr_atlas.core.ids\nfrom cmr_atlas import cine, __version__\n"
                   "def f():\n    from cmr_atlas.stats.covariates import x\n    from ..nets import unet\n")
    assert _imported("dicom.mod", src) == {"core.ids", "cine", "stats.covariates", "nets"}


@pytest.mark.parametrize("module", ["cmr_atlas.perfusion.shard", "cmr_atlas.tiscout.stage", "cmr_atlas.cine.tissue.stage"])
def test_stage_of_a_shard_without_its_series_needs_no_torch(module):
    """Every legacy shard runs the perfusion, TI-scout and tissue jobs too: importing torch there would cost
    about 1.5 CPU s per job for nothing (issue 12), so the stage imports it only for such series."""
    import subprocess
    import sys

    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
