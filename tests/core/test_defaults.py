"""No config default written twice: a default lives in cmr_atlas/core/config.schema.yaml only.

Every module under cmr_atlas/ is parsed (not imported).  A function parameter, an argparse option
or a ``mapping.get(key, ...)`` named like a config key (the explicit map below) must not carry a
literal default equal to that key's schema default: make it required and pass the value from the filled config, or read it
with ``cmr_atlas.core.config.default("a.b")``.
"""

from __future__ import annotations

import ast

import pytest

from cmr_atlas.core.config import default


# parameter / option name -> (config key, package where the name means that key; None = anywhere)
CONFIG_NAMES: dict[str, tuple[str, str | None]] = {
    "absent_threshold": ("landmarks.absent_threshold", None),
    "lv_centre_from_mask": ("landmarks.lv_centre_from_mask", None),
    "method": ("landmarks.method", None),
    "device": ("device", None),
    "models_dir": ("models_dir", None),
    "ed_method": ("segmentation.ed_frame", None),
    "ed_frame": ("segmentation.ed_frame", None),
    "batch": ("inference.batch", None),
    "breath_hold": ("fit.breath_hold", None),
    "shift_reference": ("fit.shift_reference", None),
    "vtp": ("fit.vtp", None),
    "observer": ("manual_observer", None),
    "manual_observer": ("manual_observer", None),
    "n_components": ("atlas.n_components", None),
    "scaling": ("atlas.scaling", None),
    "n_modes": ("atlas.modes_to_render", None),
    "modes_to_render": ("atlas.modes_to_render", None),
    "risk_factors": ("stats.risk_factors", None),
    "n_pcs": ("stats.n_pcs", None),
    "folds": ("stats.folds", None),
    "bootstrap": ("stats.bootstrap", None),
    "n_bootstrap": ("stats.bootstrap", None),
    "adjust_for": ("stats.adjust_for", None),
    "seed": ("stats.seed", "stats"),  # a synthetic cohort's seed is not the stats seed
    "shard_size": ("shard_size", None),
    "linkage": ("linkage", None),
    "covariates_key": ("covariates_key", None),
    "key_column": ("covariates_key_column", None),
}

# (module, function, parameter) whose literal equals a config default by coincidence, with why.
# The test fails on a stale entry too.
UNRELATED: dict[tuple[str, str, str], str] = {
    ("nets.train", "_predict_batches", "batch"): "validation forward-pass batch of the training loop, "
                                                 "not the inference.batch setting of the workflow",
}


def _literal(node: ast.AST):
    """The value of a literal default, or a sentinel when it is not one (a name, a call...)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _NOT_LITERAL


_NOT_LITERAL = object()


def _same(a, b) -> bool:
    """Equal values of the same kind (True is not 1; a tuple default matches a list default)."""
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _parameter_defaults(tree: ast.AST):
    """``(function, parameter, default node)`` of every parameter with a default."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, d in pairs:
                yield getattr(node, "name", "<lambda>"), arg.arg, d


def _option_defaults(tree: ast.AST):
    """``("add_argument", dest, default node)`` of every argparse option with ``default=``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "add_argument":
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if "default" not in kw:
                continue
            if "dest" in kw and isinstance(kw["dest"], ast.Constant):
                dest = kw["dest"].value
            else:
                flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                longs = [f for f in flags if f.startswith("--")] or flags
                if not longs:
                    continue
                dest = longs[0].lstrip("-").replace("-", "_")
            yield "add_argument", dest, kw["default"]


def _get_defaults(tree: ast.AST):
    """``("get", key, default node)`` of every ``mapping.get("key", default)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            yield "get", node.args[0].value, node.args[1]


def repeated_defaults(name: str, source: str) -> set[tuple[str, str, str, str]]:
    """``(module, function, parameter, config key)`` of each literal default equal to the schema's."""
    tree = ast.parse(source)
    found = set()
    for func, param, node in [*_parameter_defaults(tree), *_option_defaults(tree), *_get_defaults(tree)]:
        if param not in CONFIG_NAMES:
            continue
        key, scope = CONFIG_NAMES[param]
        if scope is not None and name.split(".")[0] != scope:
            continue
        value = _literal(node)
        if value is not _NOT_LITERAL and _same(value, default(key)):
            found.add((name, func, param, key))
    return found


def test_every_mapped_name_is_a_config_key_with_a_default():
    for key, _ in CONFIG_NAMES.values():
        default(key)  # KeyError names a key the schema does not have


def test_no_config_default_is_written_again_in_the_package(package_modules):
    found = set()
    for name, path in package_modules.items():
        found |= repeated_defaults(name, path.read_text())
    new = sorted(f for f in found if f[:3] not in UNRELATED)
    assert not new, ("literal defaults that repeat the config schema (make the parameter required "
                     "and pass the config value, or read cmr_atlas.core.config.default):\n"
                     + "\n".join(f"{m}.{f}({p}=...)  [{k}]" for m, f, p, k in new))
    stale = sorted(set(UNRELATED) - {f[:3] for f in found})
    assert not stale, f"no longer repeats a default: remove from UNRELATED: {stale}"


@pytest.mark.parametrize("source, expected", [
    ("def f(x, absent_threshold=0.1): pass", {("m", "f", "absent_threshold", "landmarks.absent_threshold")}),
    ("def f(*, batch=32, breath_hold=True): pass", {("m", "f", "batch", "inference.batch"),
                                                    ("m", "f", "breath_hold", "fit.breath_hold")}),
    ("def f(risk_factors=('hypertension', 'diabetes', 'current_smoker', 'high_cholesterol', "
     "'calcium_positive')): pass", {("m", "f", "risk_factors", "stats.risk_factors")}),
    ("p.add_argument('--n-pcs', type=int, default=20)", {("m", "add_argument", "n_pcs", "stats.n_pcs")}),
    ("p.add_argument('--x', dest='observer', default='obs1')",
     {("m", "add_argument", "observer", "manual_observer")}),
    ("linkage = cfg.get('linkage', False)", {("m", "get", "linkage", "linkage")}),
    # not repeats: another value, not a literal, a name outside the map, True is not 1
    ("def f(absent_threshold=0.2, batch=default('inference.batch'), n_points=20, folds=True): pass", set()),
    ("def f(seed=0): pass", set()),  # seed means stats.seed only inside the stats package
])
def test_the_checker_finds_literal_repeats(source, expected):
    assert repeated_defaults("m", source) == expected


def test_the_checker_scopes_seed_to_the_stats_package():
    assert repeated_defaults("stats.auc", "def f(seed=0): pass") == {("stats.auc", "f", "seed", "stats.seed")}


def test_defaults_are_copies_so_a_caller_cannot_change_later_ones():
    from cmr_atlas.core.config import default, defaults, schema

    first = default("stats")
    first.clear()
    assert default("stats"), "mutating one default's value changed the next caller's"
    tree = defaults()
    tree["fit"]["all_frames"] = "changed"
    assert default("fit.all_frames") != "changed"
    sch = schema()
    sch["properties"].clear()
    assert schema()["properties"]
