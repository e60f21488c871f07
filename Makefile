# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -> venv, install, synthetic demo cohort, whole workflow on it
#   make test   -> venv, install, test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO_N ?= 24
DEMO_SEED ?= 20001
DEMO_COHORT ?= data/demo_cohort
CORES  ?= 2

.PHONY: demo test install clean-demo lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

$(DEMO_COHORT)/.complete: $(VENV)/.installed
	$(BIN)/cmr-atlas synth --n-exams $(DEMO_N) --seed $(DEMO_SEED) --observers 2 --jobs $(CORES) --out $(DEMO_COHORT)
	touch $@

demo: $(DEMO_COHORT)/.complete
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) \
	    --config cohort_dir=$(DEMO_COHORT) results_dir=results/demo
	@echo
	@echo "Done. Tables: results/demo/*.parquet (schemas: docs/outputs.md)"
	@echo "Report: $(abspath results/demo/report/index.html)"

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	c=$$(mktemp -d) && r=$$(mktemp -d) && PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --lint --config cohort_dir=$$c results_dir=$$r

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/synth.py

clean-demo:
	rm -rf $(DEMO_COHORT) results/demo
