# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -> venv, install, synthetic demo cohort (24 legacy + 4 clinical exams), whole workflow on it
#   make test   -> venv, install, test suite
#   make check-workflow -> snakemake --lint and dry runs on the tiny .test/ configuration (CI)
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO_N ?= 24
DEMO_SEED ?= 20001
DEMO_COHORT ?= data/demo_cohort
DEMO_CLINICAL ?= 4
DEMO_CLINICAL_SEED ?= 20002
CORES  ?= 2
# exams per shard in the demo: one shard per core, so the per-shard stages (inference runs on one
# thread per job) keep every core busy; the workflow's default (64) suits cohorts of thousands
DEMO_SHARD ?= $(shell echo $$(( ($(DEMO_N) + $(DEMO_CLINICAL) + $(CORES) - 1) / $(CORES) )))
# test processes (pytest-xdist): tests are shared out and an idle process steals queued ones
# (--dist worksteal: 15.0 min on 2 cores against 16.6 with each file whole in one process, which
# left one process running the last heavy files alone); TEST_WORKERS=0 runs the suite in this process
TEST_WORKERS ?= $(CORES)

.PHONY: demo test install clean-demo lint check-workflow bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The demo cohort mixes protocols as an archive does: legacy MESA cine exams and modern clinical
# exams (bSSFP cine, stress/rest perfusion, TI scout, LGE, T1 maps) in one folder.
$(DEMO_COHORT)/.complete: $(VENV)/.installed
	rm -rf $(DEMO_COHORT)
	$(BIN)/cmr-atlas synth --n-exams $(DEMO_N) --seed $(DEMO_SEED) --observers 2 --jobs $(CORES) --out $(DEMO_COHORT)
	[ "$(DEMO_CLINICAL)" = 0 ] || $(BIN)/cmr-atlas synth --protocol clinical --n-exams $(DEMO_CLINICAL) \
	    --seed $(DEMO_CLINICAL_SEED) --observers 2 --jobs $(CORES) --append --out $(DEMO_COHORT)
	touch $@

demo: $(DEMO_COHORT)/.complete
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) \
	    --config cohort_dir=$(DEMO_COHORT) results_dir=results/demo shard_size=$(DEMO_SHARD)
	@echo
	@echo "Done. Tables: results/demo/*.parquet (schemas: docs/outputs.md)"
	@echo "Report: $(abspath results/demo/report/index.html)"

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The workflow on the test configuration .test/config/config.yaml (a cohort of empty exam folders,
# the snakemake-workflows layout): lint, then dry runs of the default target and of `train`; no job
# runs and no DICOM is read.
SMK_TEST = PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --directory .test

lint: $(VENV)/.installed
	$(SMK_TEST) --lint

check-workflow: lint
	$(SMK_TEST) --dry-run --quiet rules
	$(SMK_TEST) train --dry-run --quiet rules

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/synth.py

clean-demo:
	rm -rf $(DEMO_COHORT) results/demo
