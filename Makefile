# Galaxy_VAE: two commands do all the set-up.
#   make demo   build .venv, render the mock survey, run every stage into runs/demo, write runs/demo/REPORT.md
#   make test   build .venv, run the test suite
#   make notebooks   JupyterLab on the repository (the notebooks read RUN); make demo executes them into RUN/notebooks/
# Re-running `make demo` skips stages whose inputs (files, scripts, demo settings) have not changed.
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo
MOCK_DIR ?= data/mock
SEED ?= 0
# Demo size for ~20 minutes on 2 CPU cores (the scripts' own defaults are the 256 px reference setting).
# 75% of the mock is also imaged by BASS+MzLS: ~1,750 overlap pairs, ~530 test pairs
DEMO_GALAXIES ?= 2400
# the north/south survey difference: 0 identical surveys, 1 the realistic north, 2 harsher
DEMO_MOCK_GAP ?= 1
SWEEP_GAPS ?= 0 0.5 1 2
DEMO_SIZE ?= 64
# the latent-size study's choice (analysis/decals_2_3.py runs first)
DEMO_LATENT ?= auto
# the pose-separated VAE trains at 0.75 of the plain VAE's speed on a CPU (the pose measured, two
# resamplings, the view matching: README): the demo's epochs keep make demo under 20 minutes on 2 cores
DEMO_EPOCHS ?= 30
# pose separation (Galaxy_VAE_n.py --pose): moments (the default, invariant content latents) or none (plain VAE)
DEMO_POSE ?= moments
DEMO_BATCH ?= 32
DEMO_LR ?= 1e-3
# KL weight. A summed squared error plus beta * KL is the ELBO of a Gaussian decoder with pixel variance
# sigma^2 = beta / 2 (Rybkin et al. 2021, sigma-VAE): the calibrated beta is twice the reconstruction MSE per
# pixel, ~0.004 here. Measured (bench/feature_variants.py, pose-separated VAE, latent 32, 40 epochs, seed 0):
# beta 0.0625 (the reference's balance scaled by (64/256)^2, used before) gives precision@10 0.610 and forest
# 0.729 on the true type; 0.01 gives 0.648 / 0.763 and 0.004 gives 0.649 / 0.762 (MSE/px 0.00179, 0.00169, 0.00170)
DEMO_BETA ?= 0.01
DEMO_LATENT_SIZES ?= 8,16,32,64
DEMO_SWEEP_EPOCHS ?= 6
# the Galaxy Zoo questions the latent-size study and decals_5 classify in the demo (the forests on every
# question were a third of its time); `make demo DEMO_QUESTIONS=` classifies all eight
DEMO_QUESTIONS ?= smooth-or-featured,edge-on,bar,spiral-arms
DEMO_ADAPT_EPOCHS ?= 4
# the gap sweep (make gap-sweep, not part of the demo) fine-tunes longer
SWEEP_ADAPT_EPOCHS ?= 6
DEMO_ADAPT_LR ?= 2e-4
DEMO_ADAPT_BATCH ?= 64
# alignment weights: the VAE loss is a summed MSE (tens per 64 px image), so lambda 0.1 moves nothing
# (measured by transfer/gap_sweep.py); the demo and the sweep use the same weights
DEMO_LAMBDA_mmd ?= 100
DEMO_LAMBDA_paired ?= 10
DEMO_CNN_EPOCHS ?= 3
# wall time of the scorecard's contrastive encoder (analysis/decals_7.py; the script's default is the VAE's own)
DEMO_CONTRASTIVE_SECONDS ?= 30
# (the demo scores two Galaxy Zoo questions in the scorecard; decals_5 classifies all of them)

COMMON := --run $(RUN) --seed $(SEED)
# A stage re-runs when its inputs' time stamps say so, when code it runs changed (its script and the
# package modules it imports: uses, below), or when the provenance check (RUN/provenance/,
# VAE_model/provenance.py) finds its output out of date: e.g. an image replaced on disk, or a
# checkpoint re-made by hand. STALE lists those outputs (run-relative).
STAGE_SCRIPTS := make_datatxt.py Galaxy_VAE_n.py $(wildcard analysis/decals_*.py analysis/explore.py analysis/notebooks.py analysis/report.py transfer/*.py)
comma := ,
STAGE_USES := $(shell $(PYTHON_SYSTEM) -m VAE_model.deps --make $(STAGE_SCRIPTS))
uses = $(subst $(comma), ,$(patsubst $(1):%,%,$(filter $(1):%,$(STAGE_USES))))
ifneq ($(filter demo,$(or $(MAKECMDGOALS),demo)),)
STALE := $(shell test -x $(PY) && test -d $(RUN) && $(PY) -m VAE_model.provenance stale $(RUN) 2>/dev/null)
endif
stale = $(if $(filter $(1),$(STALE)),FORCE)
TRAIN_FLAGS := --image-size $(DEMO_SIZE) --batch-size $(DEMO_BATCH) --lr $(DEMO_LR) --beta $(DEMO_BETA) --pose $(DEMO_POSE) --quiet
# Each stage's demo settings are remembered in RUN/.settings_<stage>; the file changes (and the
# stage re-runs) only when its settings do.
SETTINGS_data := galaxies=$(DEMO_GALAXIES) size=$(DEMO_SIZE) seed=$(SEED) mock=$(MOCK_DIR) gap=$(DEMO_MOCK_GAP)
SETTINGS_train := latent=$(DEMO_LATENT) pose=$(DEMO_POSE) epochs=$(DEMO_EPOCHS) batch=$(DEMO_BATCH) lr=$(DEMO_LR) beta=$(DEMO_BETA)
SETTINGS_sweep := sizes=$(DEMO_LATENT_SIZES) epochs=$(DEMO_SWEEP_EPOCHS) questions=$(DEMO_QUESTIONS)
SETTINGS_cnn := epochs=$(DEMO_CNN_EPOCHS) questions=$(DEMO_QUESTIONS)
SETTINGS_adapt := epochs=$(DEMO_ADAPT_EPOCHS) lr=$(DEMO_ADAPT_LR) batch=$(DEMO_ADAPT_BATCH) lambda=$(DEMO_LAMBDA_mmd),$(DEMO_LAMBDA_paired)

.PHONY: demo test venv bench compare-arch clean-demo FORCE
.SECONDEXPANSION:

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

test: venv
	$(PY) -m pytest -q tests

# CPU figures in float32 and with bfloat16 autocast (--amp on: fast on CPUs with AMX / AVX512-BF16)
bench: venv
	$(PY) bench/benchmark.py $(COMMON) --quiet --epochs 3 --lr 1e-3 --beta 0.25 --batch-size 32
	$(PY) bench/benchmark.py $(COMMON) --quiet --epochs 3 --lr 1e-3 --beta 0.25 --batch-size 32 --amp on --output $(RUN)/bench/benchmark_amp.json

# reference vs light decoder on the demo's data and split (both trained the same way; about 10 min on 2 cores)
compare-arch: venv $(RUN)/train.txt
	$(PY) bench/compare_arch.py $(COMMON) --mock-dir $(MOCK_DIR) --image-size $(DEMO_SIZE) --epochs 20 --batch-size $(DEMO_BATCH) --lr $(DEMO_LR) --beta $(DEMO_BETA) --quiet

clean-demo:
	rm -rf $(RUN)

# Part I ------------------------------------------------------------------------------------
demo: venv $(RUN)/REPORT.md $(RUN)/explorer/index.html
	@echo "demo finished: see $(RUN)/REPORT.md"

SETTINGS_FILES := $(addprefix $(RUN)/.settings_,data train sweep cnn adapt)
.SECONDARY: $(SETTINGS_FILES)    # built by a pattern rule, but kept: they are the stages' memory

$(RUN)/.settings_%: FORCE
	@mkdir -p $(RUN)
	@echo '$(SETTINGS_$*)' | cmp -s - $@ || echo '$(SETTINGS_$*)' > $@

$(RUN)/train.txt: $(RUN)/.settings_data make_datatxt.py $(call uses,make_datatxt.py) $(call stale,train.txt) | venv
	$(PY) make_datatxt.py --mock $(DEMO_GALAXIES) --mock-dir $(MOCK_DIR) --image-size $(DEMO_SIZE) --mock-gap $(DEMO_MOCK_GAP) $(COMMON) --quiet

# The latent-size study runs first; the main model takes its choice (--latent-dim auto).
$(RUN)/best.pt: $(RUN)/train.txt $(RUN)/.settings_train $(RUN)/latent_size/latent_size.csv Galaxy_VAE_n.py $(call uses,Galaxy_VAE_n.py) $(call stale,best.pt)
	$(PY) Galaxy_VAE_n.py $(COMMON) $(TRAIN_FLAGS) --latent-dim $(DEMO_LATENT) --epochs $(DEMO_EPOCHS)

$(RUN)/selection/classes.csv: $(RUN)/train.txt analysis/decals_1.py $(call uses,analysis/decals_1.py) $(call stale,selection/classes.csv)
	$(PY) analysis/decals_1.py $(COMMON) --catalog $(MOCK_DIR)/gz_decals.parquet

$(RUN)/selection/class_index.csv: $(RUN)/selection/classes.csv analysis/decals_2_1.py $(call uses,analysis/decals_2_1.py) $(call stale,selection/class_index.csv)
	$(PY) analysis/decals_2_1.py $(COMMON)

$(RUN)/latents/mu.npy: $(RUN)/best.pt $(RUN)/selection/class_index.csv analysis/decals_2_2.py $(call uses,analysis/decals_2_2.py) $(call stale,latents/mu.npy)
	$(PY) analysis/decals_2_2.py $(COMMON)

$(RUN)/latent_size/latent_size.csv: $(RUN)/train.txt $(RUN)/.settings_sweep $(RUN)/.settings_train $(RUN)/selection/class_index.csv analysis/decals_2_3.py $(call uses,analysis/decals_2_3.py) $(call stale,latent_size/latent_size.csv)
	$(PY) analysis/decals_2_3.py $(COMMON) $(TRAIN_FLAGS) --latent-sizes $(DEMO_LATENT_SIZES) --epochs $(DEMO_SWEEP_EPOCHS) $(if $(DEMO_QUESTIONS),--questions $(DEMO_QUESTIONS))

$(RUN)/maps/embeddings.csv: $(RUN)/latents/mu.npy analysis/decals_3.py $(call uses,analysis/decals_3.py) $(call stale,maps/embeddings.csv)
	$(PY) analysis/decals_3.py $(COMMON)

$(RUN)/outliers/outlier_scores.csv: $(RUN)/latents/mu.npy analysis/decals_4.py $(call uses,analysis/decals_4.py) $(call stale,outliers/outlier_scores.csv)
	$(PY) analysis/decals_4.py $(COMMON) --mock-dir $(MOCK_DIR) --quiet

$(RUN)/classification/results.csv: $(RUN)/latents/mu.npy $(RUN)/.settings_cnn analysis/decals_5.py $(call uses,analysis/decals_5.py) $(call stale,classification/results.csv)
	$(PY) analysis/decals_5.py $(COMMON) --cnn-epochs $(DEMO_CNN_EPOCHS) --cnn-batch-size 16 $(if $(DEMO_QUESTIONS),--questions $(DEMO_QUESTIONS)) --quiet

# Part II -----------------------------------------------------------------------------------
$(RUN)/transfer/pairs.csv: $(RUN)/best.pt transfer/make_pairs.py $(call uses,transfer/make_pairs.py) $(call stale,transfer/pairs.csv)
	$(PY) transfer/make_pairs.py $(COMMON) --decals-catalog $(MOCK_DIR)/gz_decals.parquet --bass-catalog $(MOCK_DIR)/gz_bass_mzls.parquet --decals-images $(MOCK_DIR)/decals --bass-images $(MOCK_DIR)/bass_mzls

$(RUN)/transfer/metrics_before.json: $(RUN)/transfer/pairs.csv transfer/no_tf.py $(call uses,transfer/no_tf.py) $(call stale,transfer/metrics_before.json)
	$(PY) transfer/no_tf.py $(COMMON)

$(RUN)/transfer/%/best.pt: $(RUN)/transfer/metrics_before.json $(RUN)/.settings_adapt transfer/adapt.py $(call uses,transfer/adapt.py) $$(call stale,transfer/$$*/best.pt)
	$(PY) transfer/adapt.py $(COMMON) --method $* --lambda $(DEMO_LAMBDA_$*) --epochs $(DEMO_ADAPT_EPOCHS) --lr $(DEMO_ADAPT_LR) --batch-size $(DEMO_ADAPT_BATCH) --quiet

$(RUN)/transfer/before_after.csv: $(RUN)/transfer/mmd/best.pt $(RUN)/transfer/paired/best.pt transfer/evaluate.py $(call uses,transfer/evaluate.py) $(call stale,transfer/before_after.csv)
	$(PY) transfer/evaluate.py $(COMMON)

$(RUN)/similarity/precision_at_10.csv: $(RUN)/latents/mu.npy $(RUN)/transfer/before_after.csv analysis/decals_6.py $(call uses,analysis/decals_6.py) $(call stale,similarity/precision_at_10.csv)
	$(PY) analysis/decals_6.py $(COMMON) --evaluate --name auto --quiet --mock-dir $(MOCK_DIR)

# Survey-gap sweep (its own target: about 20-25 minutes on 2 cores, estimated): the north rendered at several
# gaps; at each, no transfer, invariant training alone (consistency), invariant training + MMD, MMD and paired
# adaptation; table and figure in RUN/gap_sweep/, summarised in REPORT.md. SWEEP_REFERENCE=path/to/best.pt
# adds the row plain_none: that model (e.g. the plain VAE, Galaxy_VAE_n.py --pose none in a side run) as it is.
# The consistency weight is the Part I variants' (bench/feature_variants.py --consistency).
SWEEP_LAMBDA_consistency ?= 10
SWEEP_REFERENCE ?=
.PHONY: gap-sweep
gap-sweep: $(RUN)/gap_sweep/gap_sweep.csv
$(RUN)/gap_sweep/gap_sweep.csv: $(RUN)/best.pt $(SWEEP_REFERENCE) transfer/gap_sweep.py $(call uses,transfer/gap_sweep.py)
	$(PY) transfer/gap_sweep.py $(COMMON) --mock-dir $(MOCK_DIR) --gaps $(SWEEP_GAPS) --epochs $(SWEEP_ADAPT_EPOCHS) --lr $(DEMO_ADAPT_LR) --batch-size $(DEMO_ADAPT_BATCH) --lambda-mmd $(DEMO_LAMBDA_mmd) --lambda-paired $(DEMO_LAMBDA_paired) --lambda-consistency $(SWEEP_LAMBDA_consistency) $(if $(SWEEP_REFERENCE),--reference-checkpoint $(SWEEP_REFERENCE)) --quiet

# Explorer page: one self-contained HTML file; its neighbours are decals_6's (same model, same latents)
$(RUN)/explorer/index.html: $(RUN)/similarity/precision_at_10.csv $(RUN)/maps/embeddings.csv $(RUN)/outliers/outlier_scores.csv analysis/explore.py $(call uses,analysis/explore.py) $(call stale,explorer/index.html)
	$(PY) analysis/explore.py $(COMMON) --quiet

# Feature scorecard: the run's latents against pixel PCA, aligned-pixel PCA, morphology and a contrastive
# encoder trained as long as the VAE (analysis/decals_7.py); REPORT.md shows its table
$(RUN)/scorecard/scorecard.csv: $(RUN)/best.pt $(RUN)/classification/results.csv $(RUN)/transfer/pairs.csv analysis/decals_7.py $(call uses,analysis/decals_7.py) $(call stale,scorecard/scorecard.csv)
	$(PY) analysis/decals_7.py $(COMMON) --mock-dir $(MOCK_DIR) --contrastive-seconds $(DEMO_CONTRASTIVE_SECONDS) --invariance-galaxies 300 --questions smooth-or-featured,edge-on --quiet

# The variants' table (plain, pose-separated trained on one view or on the four pooled, contrastive, the
# supervised CNN; 3 seeds, 40 epochs) on the demo data: its own target, about 1.5 hours on 2 cores; README has
# its table. The consistency variants (FEATURE_VARIANTS=consistency,pose_consistency) add about an hour more.
FEATURE_VARIANTS ?= plain,pose,pose_pooled,contrastive,cnn
FEATURE_VARIANTS_EPOCHS ?= 40
.PHONY: feature-variants
feature-variants: $(RUN)/train.txt
	$(PY) bench/feature_variants.py $(COMMON) --mock-dir $(MOCK_DIR) --variants $(FEATURE_VARIANTS) --seeds 0,1,2 --epochs $(FEATURE_VARIANTS_EPOCHS) --batch-size $(DEMO_BATCH) --lr $(DEMO_LR) --beta $(DEMO_BETA) --invariance-galaxies 300 --quiet

# Scale benchmark: every stage at 1k/3k/9k fake 64 px cutouts, extrapolated to 300k and 1e7 (~20 min wall on 2 busy cores)
.PHONY: scale gpu-check
scale: venv
	OMP_NUM_THREADS=1 $(PY) bench/scale.py --sizes 1000,3000,9000 --epochs 1 --out $(RUN)/scale
# One GPU (not yet run: no GPU lent): benchmark rows at 256 px/batch 512/bf16/channels-last/--compile, scale at 256 px, 2-epoch torchrun
gpu-check: venv
	PY=$(PY) OUT=$(RUN)/gpu_check bash bench/gpu_check.sh

# Notebooks -----------------------------------------------------------------------------------
# Each notebook is executed after the stages it reads (analysis/notebooks.py) into RUN/notebooks/<name>.ipynb,
# figures included, and <name>.html; REPORT.md links them. A notebook re-runs when it, what it reads, the
# script or the package changed, or when the provenance check finds its executed copy out of date.
NOTEBOOK_NAMES := visualization dataset_resu no_tf outline ts_resu2
NB_SOURCE_visualization := outliers/visualization.ipynb
NB_SOURCE_dataset_resu := transfer/dataset_resu.ipynb
NB_SOURCE_no_tf := transfer/no_tf.ipynb
NB_SOURCE_outline := outliers/outline.ipynb
NB_SOURCE_ts_resu2 := transfer/ts_resu2.ipynb
NB_READS_visualization := $(RUN)/latent_size/latent_size.csv
NB_READS_dataset_resu := $(RUN)/transfer/pairs.csv
NB_READS_no_tf := $(RUN)/transfer/metrics_before.json
NB_READS_outline := $(RUN)/transfer/metrics_before.json
NB_READS_ts_resu2 := $(RUN)/transfer/before_after.csv
NOTEBOOK_FILES := $(foreach name,$(NOTEBOOK_NAMES),$(RUN)/notebooks/$(name).ipynb)

$(RUN)/notebooks/%.ipynb: $$(NB_SOURCE_$$*) $$(NB_READS_$$*) analysis/notebooks.py $(call uses,analysis/notebooks.py) $$(call stale,notebooks/$$*.ipynb) $$(call stale,notebooks/$$*.html)
	$(PY) analysis/notebooks.py $(COMMON) --only $*

# JupyterLab on the repository; the notebooks read RUN (VS Code: open a notebook, pick .venv's Python as kernel)
.PHONY: notebooks
notebooks: venv
	GALAXY_VAE_RUN=$(abspath $(RUN)) JUPYTER_PATH=$(abspath $(VENV))/share/jupyter $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

# Report ------------------------------------------------------------------------------------
REPORT_INPUTS := $(RUN)/latent_size/latent_size.csv $(RUN)/maps/embeddings.csv $(RUN)/outliers/outlier_scores.csv \
	$(RUN)/classification/results.csv $(RUN)/transfer/before_after.csv $(RUN)/similarity/precision_at_10.csv \
	$(RUN)/explorer/index.html $(RUN)/scorecard/scorecard.csv $(NOTEBOOK_FILES)

$(RUN)/REPORT.md: $(REPORT_INPUTS) analysis/report.py $(call uses,analysis/report.py)
	$(PY) analysis/report.py $(COMMON) --mock-dir $(MOCK_DIR)
