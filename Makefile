# Galaxy_VAE: two commands do all the set-up.
#   make demo   build .venv, render the mock survey, run every stage into runs/demo (REPORT.md at the end)
#   make test   build .venv, run the test suite
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo
SEED ?= 0
# Demo size: fits ~20 minutes on 2 CPU cores. The real-data defaults of the scripts are 256 px etc.
DEMO_GALAXIES ?= 1500
DEMO_SIZE ?= 64
DEMO_LATENT ?= 40
DEMO_EPOCHS ?= 30
DEMO_BATCH ?= 64
DEMO_LR ?= 1e-3
COMMON := --run $(RUN) --seed $(SEED)

.PHONY: demo test venv clean-demo

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

test: venv
	$(PY) -m pytest -q tests

demo: venv
	$(PY) make_datatxt.py --mock $(DEMO_GALAXIES) --image-size $(DEMO_SIZE) $(COMMON)
	$(PY) Galaxy_VAE_n.py $(COMMON) --image-size $(DEMO_SIZE) --latent-dim $(DEMO_LATENT) --epochs $(DEMO_EPOCHS) --batch-size $(DEMO_BATCH) --lr $(DEMO_LR) --resume

clean-demo:
	rm -rf $(RUN)
