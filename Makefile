# ldmscale — every task a make target; each depends on the virtual environment, so a fresh clone
# needs no manual step. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(PY)
TORCH_VERSION := $(shell sed -n 's/^torch==//p' constraints.txt)
TORCHVISION_VERSION := $(shell sed -n 's/^torchvision==//p' constraints.txt)
STUDY ?= runs/smoke
SWEEP ?= smoke

.PHONY: help install lint format test test-unit test-quality smoke demo sr-demo bench-train bench-sample bench-status bench-gpu bench-profile check-k8s chaos chart-docs render images clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@# uv installs the same pinned versions as pip, unpacking the 7 GB of wheels in parallel
	@# (47 s with bytecode where pip took 2 min 20 s on two cores); it reads UV_DEFAULT_INDEX, not
	@# pip's config.
	@# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, a venv without .pyc
	@# files compiles every import in every process (diffusers + deepspeed: 22 s against 13 s)
	$(PY) -m pip install -q -c constraints.txt uv
	@# torch and torchvision first, pinned together: later requirements then never pull another
	@# (multi-GB) build, nor a torchvision made for another torch
	$(UV) torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	@# inception: torch-fidelity, so that LPIPS, Inception FID and IS run in `make test`
	$(UV) -c constraints.txt -e '.[dev,inception]'
	touch $@

install: $(STAMP) ## create .venv with the package and its tools

lint: $(STAMP) ## ruff, mypy on src/, yamllint
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/yamllint -s configs workflows .yamllint

format: $(STAMP) ## apply ruff's formatting and fixes
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

test: $(STAMP) ## every test: unit, end-to-end on CPU, cluster manifests
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n auto --dist loadfile --durations=25

test-unit: $(STAMP) ## the fast tier only (under a minute on two cores)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n auto --dist loadfile -m "not slow"

test-quality: $(STAMP) ## the default prepare's quality and calibration targets, DreamBooth learning its subject (about half an hour)
	$(BIN)/pytest -q --quality -m quality

smoke: $(STAMP) ## a complete small study on this machine, with a report
	$(BIN)/ldmscale sweep sweep=$(SWEEP) study=$(STUDY)

demo: ## the paper's question on data=scenes: 4 sizes, an equal-cost grid, 90 configs (68 min on 2 idle CPU cores)
	$(MAKE) smoke SWEEP=demo STUDY=runs/demo

sr-demo: ## super-resolution on the embedded domain: 3 sizes fine-tuned for 4x SR, Figs. 4, 12, 17 against bicubic
	$(MAKE) smoke SWEEP=sr_demo STUDY=runs/sr_demo

bench-sample: $(STAMP) ## images/s of ldmscale generation vs diffusers' StableDiffusionPipeline
	$(PY) benchmarks/bench_sample.py

bench-train: $(STAMP) ## samples/s of train() vs a plain PyTorch loop (debug, t16), and their ratio
	$(PY) benchmarks/bench_train.py

bench-status: $(STAMP) ## ldmscale status on a paper-sized local study vs one check per job (S3: ARGS=--s3)
	$(PY) benchmarks/bench_status.py $(ARGS)

bench-gpu: $(STAMP) ## one table on a CUDA GPU: training MFU, sampling vs diffusers, FID features (ARGS=...)
	$(PY) benchmarks/bench_gpu.py $(ARGS)

bench-profile: $(STAMP) ## measure this machine for `ldmscale forecast` (writes configs/profile/cpu.yaml; idle machine)
	$(PY) benchmarks/bench_profile.py --out configs/profile/cpu.yaml $(ARGS)

check-k8s: $(STAMP) ## cluster manifests: Helm render + lint, strict Kubernetes and Argo schemas, commands
	$(BIN)/pytest -q tests/cluster

chaos: $(STAMP) ## the fault-injection campaign (not part of make test): prints a table of trials
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/chaos --chaos -k whole

chart-docs: $(STAMP) ## regenerate charts/eval/README.md from the `# --` comments of values.yaml
	$(PY) tests/support/chart_docs.py

render: $(STAMP) ## print the manifests of charts/eval (VALUES=file.yaml to add a values file)
	$(PY) -c 'import sys, helm_python as h; v = h.values_from_yaml(open(sys.argv[1]).read()) if sys.argv[1] else None; \
	c = h.Chart.load("charts/eval"); out = c.render(v, name="ldm-eval", namespace="default"); \
	print("\n---\n".join(f"# Source: {k}\n{t.strip()}" for k, t in sorted(out.items()) if t.strip()))' "$(VALUES)"

IMAGE ?= ldmscale
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
images: ## build the training/evaluation image (needs a Docker engine)
	@if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then \
	  echo "make images: no Docker engine available here; build images/Dockerfile on a machine with one:"; \
	  echo "  docker build -f images/Dockerfile --build-arg LDMSCALE_GIT_REVISION=\$$(git rev-parse HEAD) -t $(IMAGE):$(IMAGE_TAG) ."; \
	  exit 1; \
	fi
	docker build -f images/Dockerfile --build-arg LDMSCALE_GIT_REVISION=$$(git rev-parse HEAD) -t $(IMAGE):$(IMAGE_TAG) .

clean: ## remove the virtual environment and local runs
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
