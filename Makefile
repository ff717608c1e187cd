# paperlib: every target creates/refreshes its own environment first.
#   make test                 set up .venv, run lint + the whole test suite (in parallel; < 5 min on 2 cores)
#   make reproduce            run every notebook with PROFILE=paper (default) or PROFILE=quick
#   make bench                side-by-side speed benchmarks, then the timing tests (-m timing)
#   make bench-seeds          parts 2f-2g: parts 2b-2d on 10 seeds, class-inc arm recency (8-20 min)
#   make bench-paper          part 2e: issue 8's targets at the paper profile (~9 h on 2 cores)
#   make lab                  JupyterLab on notebooks/ with the project's kernel (.venv)
#   make check-reproduction   rerun PROFILE=quick into a temp dir, compare with the committed tables
#   make reproduce-plan / gpu-bundle / gpu-check   one GPU: see gpu.mk
# GPU users: `make reproduce TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128` installs the
# CUDA build of the pinned torch version (the pin itself lives in constraints.txt only).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_INDEX_URL ?=
PROFILE ?= paper
DEVICE ?= auto
SEEDS ?=
# The data mirror: the environment variable wins; `make reproduce` also looks for ../shared/data.
PAPERLIB_DATA_MIRROR ?=
REPRO_MIRROR := $(or $(PAPERLIB_DATA_MIRROR),$(wildcard $(abspath ../shared/data)))
STAMP := $(VENV)/.installed
# uv installs the project's dependencies (measured here: 8 s against pip's 56 s, the same
# versions); it is bootstrapped from the package index into $(VENV)/.uv, outside site-packages.
# uv does not read pip's configuration, so a local wheel directory (this machine's CPU torch
# wheel) is passed explicitly when it exists. If uv cannot be had, pip installs as before.
UV_VERSION ?= 0.13.9
UV := $(VENV)/.uv/bin/uv
FIND_LINKS ?= $(wildcard /opt/wheels)

.PHONY: venv test lint reproduce bench bench-seeds bench-paper clean-venv figures lab

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "== setting up $(VENV) (see README: about 1 minute here) =="
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH_INDEX_URL)" ]; then \
	  $(PY) -m pip install -q -c constraints.txt torch --index-url "$(TORCH_INDEX_URL)"; fi
	if (test -x $(UV) || $(PY) -m pip install -q --no-cache-dir --target $(VENV)/.uv \
	      uv==$(UV_VERSION)) && $(UV) pip install -q --no-cache --python $(PY) \
	      $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) -c constraints.txt -e '.[dev]'; then :; \
	else echo "uv unavailable: installing with pip"; \
	  $(PY) -m pip install -q --no-compile -c constraints.txt -e '.[dev]'; fi
	@# byte-compile on every core (pip compiles one file at a time); third-party files that
	@# do not compile (old test fixtures) are skipped, as pip skips them
	-$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check paperlib tests notebooks

# Tests run in parallel, one pytest-xdist worker per core (TEST_WORKERS=0: serially, in-process).
TEST_WORKERS ?= auto
test: $(STAMP) lint
	$(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

include reproduce.mk
include gpu.mk

bench: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m paperlib.repro.bench --seeds 0,1,2 --readme README.md
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m pytest -q -p no:cacheprovider -m timing tests

# Not part of `make bench`: parts 2b and 2d's runs, and part 2c's best settings, on 10 seeds
# (part 2f, 8-20 min on 2 cores): do their 3-seed readings hold? BENCH_SEEDS names the seeds;
# the first 3 are make bench's. Part 2g (which arms the bandits pull last) runs with it.
BENCH_SEEDS ?= 0,1,2,3,4,5,6,7,8,9
bench-seeds: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m paperlib.repro.bench --part seeds \
	  --seeds $(BENCH_SEEDS) --out results/bench_seeds.json --readme README.md

# Not part of `make bench`: LeNet at the paper profile, on 2 CPU cores about 40 minutes a seed
# (data-incremental), an hour a seed (class-incremental) and 50 minutes a seed (rotated); its runs
# are stored in results/, so an interrupted run resumes and a rerun only re-tabulates.
# SCENARIO[:SEEDS] entries; each scenario has its own README section, and a run that names some
# scenarios (e.g. PAPER_SCENARIOS=rotated) refreshes their sections and leaves the others.
PAPER_SCENARIOS ?= data_incremental class_incremental rotated
# Scenarios of those whose part 2e also runs part 2d's cells at replay's budget (the sample bandit
# alone, with the weight bandit, with the regulariser: 3 more runs a seed, ~30 min on rotated).
PAPER_ATTRIBUTION ?= rotated
bench-paper: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m paperlib.repro.bench --part paper --seeds 0,1,2 \
	  --scenarios $(PAPER_SCENARIOS) \
	  --attribution $(filter $(PAPER_ATTRIBUTION),$(foreach s,$(PAPER_SCENARIOS),$(firstword $(subst :, ,$(s))))) \
	  --out results/bench_paper.json --readme README.md

# The kernel named python3 inside .venv is the project's (installed by the venv step above);
# LAB_ARGS passes options through, e.g. make lab LAB_ARGS="--no-browser --port 8899"
# (add --allow-root when running as root, e.g. in a container).
LAB_ARGS ?=
lab: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m jupyterlab --notebook-dir=notebooks $(LAB_ARGS)

clean-venv:
	rm -rf $(VENV)
