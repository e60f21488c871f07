"""The workflow's configuration is checked before anything runs, with messages naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

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
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for line in smk.read_text().splitlines():
            if line.startswith("rule ") and "train" not in smk.name:
                rules.add(line.split()[1].rstrip(":"))
    rules -= {"infer"}  # target-only rule (no job of its own)
    res = default["set-resources"]
    missing = {r for r in rules if not {"mem_mb", "runtime"} <= set(res.get(r, {}))}
    assert not missing, missing
    assert res["infer_shard"]["gpu"] == 1
