# kfp-rai: one venv in .venv, pinned by constraints.txt. `make run` and `make test` set it up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint compile bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: setup          ## the lifecycle pipeline on the bundled Adult data, locally (kfp.local)
	$(BIN)/kfp-rai run

test: setup         ## every test: unit, component (kfp.local), pipeline, golden YAML
	$(BIN)/pytest

test-fast: setup    ## unit tests only
	$(BIN)/pytest tests/unit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check components pipelines tests benchmarks

compile: setup      ## refresh pipelines/compiled/*.yaml after changing a component or pipeline
	$(BIN)/kfp-rai compile --output pipelines/compiled

bench: setup
	$(BIN)/python benchmarks/bench_bootstrap.py

clean:
	rm -rf $(VENV) runs registry .pytest_cache .ruff_cache
