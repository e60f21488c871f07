"""The workflow's configuration is checked before anything runs, with messages naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cmr_atlas.cli import main
from cmr_atlas.core.config import defaults, fill_and_validate, required_keys
from cmr_atlas.core.shards import list_exam_folders

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
BASE = yaml.safe_load((REPO / "config/config.yaml").read_text())


def check(**changes):
    cfg = copy.deepcopy(BASE)
    for k, v in changes.items():
        if isinstance(v, dict):
            cfg[k] = {**cfg.get(k, {}), **v}
        else:
            cfg[k] = v
    validate(cfg, SCHEMA)


def test_shipped_config_is_valid():
    check()


@pytest.mark.parametrize("changes, words", [
    ({"shard_size": 0}, ["shard_size", "minimum"]),
    ({"shard_size": "64"}, ["shard_size", "integer"]),
    ({"shardsize": 64}, ["shardsize", "unexpected"]),
    ({"device": "gpu"}, ["device", "auto"]),
    ({"stats": {"folds": "2"}}, ["folds", "integer"]),
    ({"exam_id_key": "short"}, ["exam_id_key"]),
])
def test_bad_values_are_named(changes, words):
    with pytest.raises(WorkflowError) as e:
        check(**changes)
    msg = str(e.value)
    assert all(w in msg for w in words), msg


def test_missing_cohort_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="cohort folder not found: .*nowhere"):
        list_exam_folders(tmp_path / "nowhere")


def test_profiles_do_not_share_keys():
    # Snakemake does not merge a key given in two profiles: the workflow profile would silently
    # replace the slurm profile's block (docs/cluster.md)
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    slurm = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    shared = set(default) & set(slurm) - {"printshellcmds", "rerun-incomplete"}
    assert not shared, shared
    assert "set-resources" not in slurm and "default-resources" not in default


def test_every_stage_rule_has_memory_and_runtime():
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    rules = set()
    for smk in (REPO / "workflow/rules").rglob("*.smk"):
        for line in smk.read_text().splitlines():
            if line.startswith("rule ") and "train" not in smk.name:
                rules.add(line.split()[1].rstrip(":"))
    rules -= {"infer"}  # target-only rule (no job of its own)
    res = default["set-resources"]
    missing = {r for r in rules if not {"mem_mb", "runtime"} <= set(res.get(r, {}))}
    assert not missing, missing
    assert res["infer_shard"]["gpu"] == 1


# --- defaults: written once, in the schema -------------------------------------------------------

def test_snakemake_validate_fills_nested_defaults_like_the_package():
    cfg = copy.deepcopy(BASE)
    cfg["stats"] = {"n_pcs": 5}  # a block given in part keeps its value and gets the rest
    validate(cfg, SCHEMA)
    assert cfg == fill_and_validate({**BASE, "stats": {"n_pcs": 5}})
    assert cfg["stats"]["n_pcs"] == 5 and cfg["stats"]["folds"] == defaults()["stats"]["folds"]
    assert cfg["landmarks"]["absent_threshold"] == defaults()["landmarks"]["absent_threshold"]


def test_shipped_config_sets_only_the_required_keys():
    assert sorted(BASE) == sorted(required_keys()) == ["cohort_dir", "exam_id_key", "results_dir"]


def test_rules_read_the_filled_config_without_repeating_defaults():
    smk = [REPO / "Snakefile", *(REPO / "workflow/rules").rglob("*.smk")]
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in smk
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "config.get(" in line or ".get(" in line and "config" in line]
    assert not offenders, offenders


def test_config_command_prints_every_default(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "fit": {"vtp": True}}))
    assert main(["config", str(cfg), "--set", "stats.n_pcs=7", "--set", "linkage=true"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    expected = defaults()
    expected.update(BASE, linkage=True)
    expected["fit"]["vtp"] = True
    expected["stats"]["n_pcs"] = 7
    assert out == expected


@pytest.mark.parametrize("content, args, key", [
    ({"shard_size": 0}, [], "shard_size"),
    ({}, ["--set", "stats.folds=x"], "stats.folds"),
    ({"landmarks": {"threshold": 0.2}}, [], "threshold"),
    ({"cohort_dir": None}, [], "cohort_dir"),
])
def test_config_command_names_the_bad_key(tmp_path, capsys, content, args, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, **content}))
    assert main(["config", str(cfg), *args]) != 0
    assert key in capsys.readouterr().err


def test_config_command_without_a_file_lists_defaults_and_required_keys(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "cohort_dir, results_dir, exam_id_key" in out.splitlines()[0]
    assert yaml.safe_load(out) == defaults()


def test_ci_test_config_is_valid_and_its_cohort_has_exam_folders():
    cfg = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    validate(cfg, SCHEMA)
    assert len(list_exam_folders(REPO / ".test" / cfg["cohort_dir"])) > cfg["shard_size"]  # >1 shard


def test_ed_es_inference_needs_ed_es_fits():
    """inference.frames ed_es leaves the images every-frame fits need unsegmented: named, whether
    the config comes through the package or the workflow (common.smk raises on conflicts())."""
    from cmr_atlas.core.config import ConfigError, conflicts

    ok = fill_and_validate({**BASE, "inference": {"frames": "ed_es"}, "fit": {"all_frames": False}})
    assert ok["inference"]["frames"] == "ed_es" and conflicts(ok) == []
    with pytest.raises(ConfigError, match="fit.all_frames"):
        fill_and_validate({**BASE, "inference": {"frames": "ed_es"}})
    cfg = copy.deepcopy({**BASE, "inference": {"frames": "ed_es"}})
    validate(cfg, SCHEMA)  # each value valid on its own
    assert any("fit.all_frames" in m for m in conflicts(cfg))
