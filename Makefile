# kfp-rai: one venv in .venv, pinned by constraints.txt. `make run` and `make test` set it up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint compile docs bench bench-smoke verify audit image base-image image-debian test-containers kind-up e2e kind-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: setup          ## the lifecycle pipeline on the bundled Adult data, locally (kfp.local)
	$(BIN)/kfp-rai run

# Two pytest-xdist workers (TEST_WORKERS=0 runs one process), scheduled by tests/conftest.py: a
# module on one worker, the modules reading the shared lifecycle runs together. OpenMP threads that
# find no core free sleep instead of spinning, as two workers training at once would make them.
TEST_WORKERS ?= 2
test: setup         ## every test: unit, component (kfp.local), pipeline, golden YAML
	OMP_WAIT_POLICY=passive $(BIN)/pytest -n $(TEST_WORKERS) --durations=15

test-fast: setup    ## unit tests only
	$(BIN)/pytest tests/unit

lint: setup         ## ruff, and mypy (strict) on the library
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src components pipelines tests benchmarks
	$(BIN)/mypy

compile: setup      ## refresh pipelines/compiled/*.yaml after changing a component or pipeline
	$(BIN)/kfp-rai compile --output pipelines/compiled

docs: setup         ## regenerate docs/ from the docstrings, the policy's declarations and the bad-input table
	$(BIN)/python -m kfp_rai.pipelines.reference docs
	$(BIN)/python tests/unit/test_bad_inputs.py --write-docs

verify: $(VENV)-tools/.installed  ## offline checks of manifests, Dockerfile, workflows (needs kubectl)
	PATH="$(CURDIR)/$(VENV)-tools/bin:$$PATH" bash scripts/verify-offline.sh

audit: $(VENV)-tools/.installed  ## bandit on the code, pip-audit on the locked dependencies (where reachable)
	PATH="$(CURDIR)/$(VENV)-tools/bin:$$PATH" bash scripts/audit.sh

$(VENV)-tools/.installed: requirements-tools.txt constraints-tools.txt
	$(PY) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet --upgrade pip
	$(VENV)-tools/bin/pip install --quiet -c constraints-tools.txt -r requirements-tools.txt
	touch $@

VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/kfp_rai/_version.py)
# The commit the image is built from (-dirty: with uncommitted changes), its label org.opencontainers.image.revision.
REVISION = $(shell (git rev-parse HEAD 2>/dev/null || echo unknown) | tr -d '\n'; git diff --quiet HEAD 2>/dev/null || echo -dirty)
IMAGE ?= ghcr.io/kfp-rai/kfp-rai:$(VERSION)
# The base both stages build FROM: the official image (Docker Hub), or one built from Debian's own
# packages where Docker Hub is out of reach (scripts/base-image.sh; `make image-debian`).
BASE_IMAGE ?= python:3.11.14-slim-bookworm
DOCKER_BUILD_FLAGS ?= --network host

# The package index as this host's pip knows it (environment first, then pip's configuration),
# passed to the build stage only; the host's file:// indexes, which no container reaches, are left out.
image:              ## build the component/serving image, tagged with the package version (BASE_IMAGE=REF: another base)
	@pipconf() { v=$$(printenv "$$1" || $(PY) -m pip config get "$$2" 2>/dev/null || true); \
	  for u in $$v; do case $$u in http://*|https://*) printf '%s ' "$$u";; esac; done | sed 's/ $$//'; }; \
	index=$$(pipconf PIP_INDEX_URL global.index-url); extra=$$(pipconf PIP_EXTRA_INDEX_URL global.extra-index-url); \
	trusted=$$(printenv PIP_TRUSTED_HOST || $(PY) -m pip config get global.trusted-host 2>/dev/null || true); \
	unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; \
	[ -z "$$index" ] || export PIP_INDEX_URL="$$index"; [ -z "$$extra" ] || export PIP_EXTRA_INDEX_URL="$$extra"; \
	[ -z "$$trusted" ] || export PIP_TRUSTED_HOST="$$trusted"; \
	set -x; docker build $(DOCKER_BUILD_FLAGS) --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
	  --build-arg PIP_INDEX_URL --build-arg PIP_EXTRA_INDEX_URL --build-arg PIP_TRUSTED_HOST -t $(IMAGE) .

base-image:         ## a Python base image from Debian's packages (debootstrap, no Docker Hub); prints its reference last
	bash scripts/base-image.sh

image-debian:       ## `make image` on the debootstrap base (needs root for debootstrap, a Docker engine, a Debian mirror)
	base=$$(bash scripts/base-image.sh | tail -n 1) && $(MAKE) image BASE_IMAGE="$$base"

test-containers: setup  ## tests/container: the image on a Debian base, the lifecycle in it (DockerRunner), the server container
	KFP_RAI_CONTAINER_TESTS=1 $(BIN)/pytest --durations=10 tests/container

kind-up: setup      ## kind cluster + Kubeflow Pipelines + the image + manifests/overlays/kind
	bash scripts/kind-up.sh

e2e: setup          ## tests/e2e against KFP_HOST (default http://localhost:8080)
	bash scripts/e2e.sh

kind-down:
	bash scripts/kind-down.sh

bench: setup        ## statistics at 100k/1M/10M rows vs Evidently, fairlearn and the floor -> benchmarks/RESULTS.md
	$(BIN)/python benchmarks/bench_stats.py

bench-smoke: setup  ## the statistics benchmark at 20k rows, without Evidently (CI): it must run, not be fast
	$(BIN)/python benchmarks/bench_stats.py --sizes 20k --evidently skip --n-boot-fairlearn 2 --output $(VENV)/bench-smoke.md

clean:
	rm -rf $(VENV) $(VENV)-tools runs registry .pytest_cache .ruff_cache
