# Reproduction: every notebook through the strict papermill wrapper (paperlib.notebooks).
# Included by the Makefile, which defines PY, STAMP, PROFILE, DEVICE, SEEDS and REPRO_MIRROR.
#
#   make reproduce                    PROFILE=paper (full settings; a GPU helps)
#   make -j2 reproduce PROFILE=quick  CPU-sized, about 10 minutes on 2 cores
#   make reproduce SEEDS=0,1,2        override the profile's seeds
#   make reproduce-02_class_incremental_cifar10 PROFILE=quick   one notebook (variant)
#
# Each notebook (and each dataset variant of 02 and 04) is its own target, so `make -j`
# runs them in parallel. Finished runs are cache hits in results/, so an interrupted
# reproduction resumes where it stopped; executed notebooks land in
# notebooks/executed/$(PROFILE)/ only when every cell succeeded, written clean (no timings,
# kernel ids or absolute paths; see paperlib/nbclean.py). Those of PROFILE=quick (and the
# paper-profile real streams) are committed, so they open rendered on the repository page.
# 05 and 06 reuse the class-incremental MNIST runs of 02, and 07 those of 01, 02 and 05,
# so they run after them. The last step rebuilds figures/tables/ and the README snippet.

EXEC_DIR := notebooks/executed/$(PROFILE)
# Threads per run: under `make -jN` several notebooks share the cores, and PyTorch's
# intra-op thread pools then oversubscribe them (small CPU models slow down by 10x or more).
# Default: one thread per process when running in parallel, PyTorch's default otherwise.
REPRO_THREADS ?= $(if $(filter -j%,$(MAKEFLAGS)),1,)
NB_ENV = PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(if $(REPRO_THREADS),OMP_NUM_THREADS=$(REPRO_THREADS) MKL_NUM_THREADS=$(REPRO_THREADS))
NB_PARAMS := -p profile $(PROFILE) -p device $(DEVICE) $(if $(SEEDS),-p seeds $(SEEDS))
NB_RUN = $(NB_ENV) $(PY) -m paperlib.notebooks --cwd notebooks
NB_DEPS := $(STAMP) $(wildcard paperlib/*.py)

REPRO_NOTEBOOKS := 01_data_incremental \
	02_class_incremental_mnist 02_class_incremental_fashion_mnist 02_class_incremental_cifar10 \
	03_domain_drift 04_real_streams_elec2 04_real_streams_weather \
	05_ablations 06_bandit_dynamics 07_cost_vs_accuracy
REPRO_OUT := $(addprefix $(EXEC_DIR)/,$(addsuffix .ipynb,$(REPRO_NOTEBOOKS)))

.PHONY: reproduce reproduce-notebooks $(addprefix reproduce-,$(REPRO_NOTEBOOKS))

reproduce: reproduce-notebooks
	$(PY) -m paperlib.report --profile $(PROFILE) --readme README.md
	@echo "== figures in figures/, tables in figures/tables/, executed notebooks in $(EXEC_DIR)/ =="

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
reproduce-paper-streams: $(STAMP)
	mkdir -p notebooks/executed/paper
	for d in weather elec2; do \
	  $(NB_ENV) $(PY) -m paperlib.notebooks --cwd notebooks notebooks/04_real_streams.ipynb \
	    notebooks/executed/paper/04_real_streams_$$d.ipynb -p profile paper -p device $(DEVICE) \
	    -p dataset $$d -p figures_dir ../figures/paper || exit 1; \
	done
	$(PY) -m paperlib.report --profile paper --figures-dir figures/paper --readme README.md \
	  --readme-marker paper-results
