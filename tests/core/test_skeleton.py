import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cmr_atlas.cli import COMMANDS, main
from cmr_atlas.core.config import ConfigError, load_config, validate_config
from cmr_atlas.core.ids import exam_id
from cmr_atlas.core.shards import assign_shards, update_manifest
from cmr_atlas.core.tables import Column, SchemaError, TableSchema, read_table, schemas_markdown, write_table

REPO = Path(__file__).resolve().parents[2]


def test_every_subcommand_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert name in capsys.readouterr().out


def test_console_script_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "cmr_atlas", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_default_config_is_valid():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert cfg["shard_size"] >= 1


def test_workflow_schema_is_the_package_schema():
    # one schema, one set of defaults: the workflow's path links to the file shipped in the package
    link = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert link.resolve() == (REPO / "cmr_atlas" / "core" / "config.schema.yaml").resolve()


def test_bad_config_names_the_key():
    cfg = load_config(REPO / "config" / "config.yaml")
    cfg["shard_size"] = 0
    with pytest.raises(ConfigError, match="shard_size"):
        validate_config(cfg)


def test_exam_id_keyed_and_stable():
    a = exam_id("1.2.3", "secret-key-1")
    assert a == exam_id("1.2.3", "secret-key-1")
    assert a != exam_id("1.2.3", "secret-key-2")
    assert a.startswith("E") and len(a) == 17


SCHEMA = TableSchema("t", "test", "thing", (Column("a", "int", "x"), Column("b", "str", "y", nullable=False)), group="test")


def test_write_table_atomic_and_checked(tmp_path):
    p = write_table(pd.DataFrame({"b": ["u"], "a": [1]}), tmp_path / "x" / "t.parquet", SCHEMA)
    assert list(read_table(p, SCHEMA).columns) == ["a", "b"]
    assert [f.name for f in p.parent.iterdir()] == ["t.parquet"]  # no temp file left
    with pytest.raises(SchemaError, match="missing columns"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "y.parquet", SCHEMA)
    with pytest.raises(SchemaError, match="nulls"):
        write_table(pd.DataFrame({"a": [1], "b": [None]}), tmp_path / "y.parquet", SCHEMA)


def test_docs_outputs_in_sync():
    doc = REPO / "docs" / "outputs.md"
    assert doc.read_text().strip() == schemas_markdown().strip(), "run: cmr-atlas schemas --markdown > docs/outputs.md"


def test_shards_are_append_only():
    first = assign_shards([f"e{i:02d}" for i in range(10)], 4, {})
    assert sorted(set(first.values())) == ["s0000", "s0001", "s0002"]
    more = assign_shards([f"e{i:02d}" for i in range(13)], 4, first)
    for k, v in first.items():
        assert more[k] == v  # nobody moves
    assert sum(1 for v in more.values() if v == "s0002") == 4


def test_update_manifest_keeps_mtime(tmp_path):
    cohort = tmp_path / "c"
    for i in range(3):
        (cohort / f"ex{i}").mkdir(parents=True)
    shards = update_manifest(cohort, tmp_path / "r", 2)
    assert shards == {"s0000": ["ex0", "ex1"], "s0001": ["ex2"]}
    f = tmp_path / "r" / "shards" / "s0000" / "folders.txt"
    m = f.stat().st_mtime_ns
    (cohort / "ex3").mkdir()
    update_manifest(cohort, tmp_path / "r", 2)
    assert f.stat().st_mtime_ns == m


def test_every_schema_module_is_documented():
    """registered() (what docs/outputs.md and `cmr-atlas schemas` list) finds every table that
    importing the whole package declares."""
    discovered = subprocess.run(
        [sys.executable, "-c", "from cmr_atlas.core.tables import registered\n"
         "print('\\n'.join(sorted(f'{s.group}/{s.name}' for s in registered())))"],
        capture_output=True, text=True, check=True).stdout.split()
    everything = subprocess.run(
        [sys.executable, "-c", "import importlib, pkgutil, cmr_atlas\n"
         "from cmr_atlas.core import tables\n"
         "for m in pkgutil.walk_packages(cmr_atlas.__path__, 'cmr_atlas.'):\n"
         "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
         "print('\\n'.join(sorted(f'{g}/{n}' for g, n in tables._REGISTRY)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert discovered == everything, set(everything) ^ set(discovered)


def test_query_command_runs_sql_over_a_results_folder(tmp_path, capsys):
    write_table(pd.DataFrame({"a": [1, 2], "b": ["u", "v"]}), tmp_path / "atlas" / "t.parquet", SCHEMA)
    write_table(pd.DataFrame({"a": [3], "b": ["w"]}), tmp_path / "shards" / "s0000" / "t.parquet", SCHEMA)
    assert main(["query", "SELECT count(*) AS n, max(b) AS b FROM atlas_t", "--results", str(tmp_path), "--csv"]) == 0
    assert capsys.readouterr().out.strip() == "n,b\n2,v"  # per-shard tables are not views
