"""benchmarks/throughput.py --set: the run's config settings, checked against the schema first."""

import pytest


def test_settings_go_into_nested_blocks_and_bad_ones_stop_the_run(benchmark_module):
    run_config = benchmark_module("throughput").run_config
    base = {"cohort_dir": "c", "results_dir": "r", "inference": {"runtime": "auto"}}
    cfg = run_config(base, ["fit.all_frames=false", "inference.batch=8"])
    assert cfg["fit"] == {"all_frames": False}
    assert cfg["inference"] == {"runtime": "auto", "batch": 8}
    assert base == {"cohort_dir": "c", "results_dir": "r", "inference": {"runtime": "auto"}}  # not changed
    assert run_config(base, []) == base
    with pytest.raises(SystemExit, match="all_frames"):
        run_config(base, ["fit.all_frames=sometimes"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        run_config(base, ["fit.all_frames"])
