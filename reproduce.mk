# Reproduction: every notebook through the strict papermill wrapper (paperlib.repro.notebooks).
# Included by the Makefile, which defines PY, STAMP, PROFILE, DEVICE, SEEDS and REPRO_MIRROR.
#
#   make reproduce                    PROFILE=paper (full settings; a GPU helps)
#   make reproduce PROFILE=quick      CPU-sized, 7-11 minutes on 2 cores
#   make reproduce SCHEDULER=tcp://host:8786   the runs on a Dask cluster (README)
#   make sweep PROFILE=quick          only compute the runs (paperlib sweep)
#   make reproduce SEEDS=0,1,2        override the profile's seeds
#   make reproduce-02_class_incremental_cifar10 PROFILE=quick   one notebook (variant)
#
# `make reproduce` first computes every run all notebooks need with `paperlib sweep` (in
# parallel: a Dask LocalCluster with one single-threaded worker per core, or SCHEDULER), then
# executes the notebooks, which find their runs in the cache. Each notebook (and each dataset
# variant of 02 and 04) is its own target, so `make -j` runs them in parallel. Finished runs
# are cache hits in results/, so an interrupted reproduction resumes where it stopped (the
# sweep computes only what is missing); executed notebooks land in
# notebooks/executed/$(PROFILE)/ only when every cell succeeded, written clean (no timings,
# kernel ids or absolute paths; see paperlib/repro/nbclean.py). Those of PROFILE=quick (and the
# paper-profile real streams) are committed, so they open rendered on the repository page.
# 05 and 06 reuse the class-incremental MNIST runs of 02, and 07 those of 01, 02 and 05,
# so they run after them. The last step rebuilds figures/tables/ and the README snippet.

EXEC_DIR := notebooks/executed/$(PROFILE)
# Threads per run: every run pins PyTorch's intra-op thread count (paperlib.serving.provenance), 1
# unless REPRO_THREADS says otherwise, serially and under `make -jN` alike: CPU kernels reduce
# in a thread-count-dependent order, so this is what makes serial and parallel reproductions
# give identical numbers. The count is part of each run's results key and recorded env.
REPRO_THREADS ?= 1
NB_ENV = PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" PAPERLIB_THREADS=$(REPRO_THREADS) OMP_NUM_THREADS=$(REPRO_THREADS) MKL_NUM_THREADS=$(REPRO_THREADS)
NB_PARAMS = -p profile $(PROFILE) -p device $(DEVICE) $(if $(SEEDS),-p seeds $(SEEDS)) \
	$(if $(FIGURES_DIR),-p figures_dir $(FIGURES_DIR))
NB_RUN = $(NB_ENV) $(PY) -m paperlib.repro.notebooks --cwd notebooks
NB_DEPS := $(STAMP) $(wildcard paperlib/*.py paperlib/*/*.py)
SCHEDULER ?=
SWEEP = $(NB_ENV) $(PY) -m paperlib.repro.cli sweep -p device $(DEVICE) $(if $(SEEDS),-p seeds $(SEEDS)) \
	$(if $(SCHEDULER),--scheduler $(SCHEDULER))

REPRO_NOTEBOOKS := 01_data_incremental \
	02_class_incremental_mnist 02_class_incremental_fashion_mnist 02_class_incremental_cifar10 \
	03_domain_drift 04_real_streams_elec2 04_real_streams_weather \
	05_ablations 06_bandit_dynamics 07_cost_vs_accuracy
REPRO_OUT := $(addprefix $(EXEC_DIR)/,$(addsuffix .ipynb,$(REPRO_NOTEBOOKS)))

.PHONY: reproduce reproduce-notebooks sweep $(addprefix reproduce-,$(REPRO_NOTEBOOKS))

sweep: $(STAMP)
	$(SWEEP) -p profile $(PROFILE)

# After the sweep the notebooks only read the cache: they render NB_JOBS at a time (default one
# per core; under `make -jN` the jobserver's N).
NB_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
REPORT = $(PY) -m paperlib.repro.report --profile $(PROFILE) --readme README.md && \
	$(PY) -m paperlib.repro.report --readme README.md \
	  --splice 07_cost_vs_accuracy_matched_budgets budget-results
reproduce: sweep
	$(MAKE) --no-print-directory $(if $(findstring j,$(firstword $(MAKEFLAGS))),,-j$(NB_JOBS)) reproduce-notebooks
	$(REPORT)
	@echo "== figures in figures/, tables in figures/tables/, executed notebooks in $(EXEC_DIR)/ =="

# The reproduction as it ran before the sweep (issue 10's comparison): no sweep, each notebook
# computes its own runs one at a time, and `make -jN` runs N notebooks side by side.
.PHONY: reproduce-without-sweep
reproduce-without-sweep: $(STAMP)
	$(MAKE) --no-print-directory reproduce-notebooks
	$(REPORT)

reproduce-notebooks: $(REPRO_OUT)

$(addprefix reproduce-,$(REPRO_NOTEBOOKS)): reproduce-%: $(EXEC_DIR)/%.ipynb

$(EXEC_DIR)/01_data_incremental.ipynb: notebooks/01_data_incremental.ipynb $(NB_DEPS)
	$(NB_RUN) $< $@ $(NB_PARAMS)

$(EXEC_DIR)/02_class_incremental_%.ipynb: notebooks/02_class_incremental.ipynb $(NB_DEPS)
	$(NB_RUN) $< $@ $(NB_PARAMS) -p dataset $*

$(EXEC_DIR)/03_domain_drift.ipynb: notebooks/03_domain_drift.ipynb $(NB_DEPS)
	$(NB_RUN) $< $@ $(NB_PARAMS)

$(EXEC_DIR)/04_real_streams_%.ipynb: notebooks/04_real_streams.ipynb $(NB_DEPS)
	$(NB_RUN) $< $@ $(NB_PARAMS) -p dataset $*

$(EXEC_DIR)/05_ablations.ipynb: notebooks/05_ablations.ipynb $(NB_DEPS) \
		| $(EXEC_DIR)/02_class_incremental_mnist.ipynb
	$(NB_RUN) $< $@ $(NB_PARAMS)

$(EXEC_DIR)/06_bandit_dynamics.ipynb: notebooks/06_bandit_dynamics.ipynb $(NB_DEPS) \
		| $(EXEC_DIR)/02_class_incremental_mnist.ipynb
	$(NB_RUN) $< $@ $(NB_PARAMS)

$(EXEC_DIR)/07_cost_vs_accuracy.ipynb: notebooks/07_cost_vs_accuracy.ipynb $(NB_DEPS) \
		| $(EXEC_DIR)/01_data_incremental.ipynb $(EXEC_DIR)/02_class_incremental_mnist.ipynb \
		  $(EXEC_DIR)/05_ablations.ipynb
	$(NB_RUN) $< $@ $(NB_PARAMS)

# The real streams are small enough for the full paper settings on a CPU: run them on their own
# (3 seeds), with figures in figures/paper/ and their table in README's paper-results section.
.PHONY: reproduce-paper-streams
# STREAM_METHODS: the methods of the paper-profile streams (default: the committed run's list;
# empty = the notebook's default, every rival included, about an hour on 2 cores because of GSS).
STREAM_METHODS ?= finetune,full_retrain,scratch,replay,bandit,ewc,online_ewc,si,mas,derpp,er_ace
STREAM_METHODS_P = $(if $(STREAM_METHODS),-p methods $(STREAM_METHODS))
reproduce-paper-streams: $(STAMP)
	mkdir -p notebooks/executed/paper
	$(SWEEP) -p profile paper --notebook 04_real_streams $(STREAM_METHODS_P)
	for d in weather elec2; do \
	  $(NB_ENV) $(PY) -m paperlib.repro.notebooks --cwd notebooks notebooks/04_real_streams.ipynb \
	    notebooks/executed/paper/04_real_streams_$$d.ipynb -p profile paper -p device $(DEVICE) \
	    -p dataset $$d -p figures_dir ../figures/paper $(STREAM_METHODS_P) || exit 1; \
	done
	$(PY) -m paperlib.repro.report --profile paper --figures-dir figures/paper --readme README.md \
	  --readme-marker paper-results

# A fresh reproduction of CHECK_PROFILE (default quick) into a temporary folder (results,
# executed notebooks, figures and tables; the checkout is not touched), then the largest
# deviation of every table from the committed one (git HEAD). Fails over CHECK_TOLERANCE
# (default 0: identical numbers). With the pinned thread count, serial and -j runs agree.
CHECK_PROFILE ?= quick
CHECK_DIR ?= $(or $(TMPDIR),/tmp)/paperlib-check-reproduction
CHECK_TOLERANCE ?= 0
CHECK_REFERENCE ?= HEAD:figures/tables
.PHONY: check-reproduction
check-reproduction: $(STAMP)
	rm -rf $(CHECK_DIR) && mkdir -p $(CHECK_DIR)/figures
	PAPERLIB_RESULTS=$(CHECK_DIR)/results $(MAKE) --no-print-directory reproduce-notebooks \
	  PROFILE=$(CHECK_PROFILE) EXEC_DIR=$(CHECK_DIR)/executed FIGURES_DIR=$(CHECK_DIR)/figures
	PAPERLIB_RESULTS=$(CHECK_DIR)/results $(PY) -m paperlib.repro.report --profile $(CHECK_PROFILE) \
	  --figures-dir $(CHECK_DIR)/figures
	$(PY) -m paperlib.repro.reprocheck --fresh $(CHECK_DIR)/figures/tables \
	  --reference $(CHECK_REFERENCE) --tolerance $(CHECK_TOLERANCE)
