# One GPU: the plan, the offline bundle and the paper-profile check (README, "Paper profile on
# one GPU"). Included by the Makefile, which defines PY, STAMP and PROFILE.
#
#   make reproduce-plan PROFILE=paper     runs, steps, FLOPs and predicted time per notebook
#   make gpu-bundle                        wheels + decoded data for an offline GPU node
#   make gpu-check                         the paper profile of every notebook on this GPU
#   make gpu-check DRY_RUN=1               the same code path on CPU, smoke profile, seed 0

GPU_ARGS ?=
DRY_RUN ?=
PLAN_ARGS ?=

.PHONY: reproduce-plan gpu-bundle gpu-check

reproduce-plan: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m paperlib.repro.cli plan -p profile $(PROFILE) $(PLAN_ARGS)

gpu-bundle: $(STAMP)
	PAPERLIB_DATA_MIRROR="$(REPRO_MIRROR)" $(PY) -m paperlib.repro.bundle --out gpu_bundle

# No $(STAMP): the GPU node runs its own python3 (PYTHON=...), not a venv.
gpu-check:
	PYTHON="$(if $(DRY_RUN),$(PY),$(or $(GPU_PYTHON),python3))" scripts/gpu_check.sh \
	  $(if $(DRY_RUN),--smoke --out gpu_out/smoke --figures-dir gpu_out/smoke/figures \
	  --results gpu_out/smoke/results,--data gpu_bundle/data-main) $(GPU_ARGS)
