# make demo   set up .venv, build the tiny model and the demo dataset, inspect it, train both stages, evaluate
# make test   set up .venv and run the test suite (offline)
# make lint   ruff

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of this version lies on the development machines' disk; override for CUDA machines.
TORCH_SPEC ?= torch==2.13.0
DEMO ?= demo_out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= disabled
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

# Reuses an existing .venv; reinstalls the project when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

demo: setup
	$(PY) -m m2se.model.tiny --out $(DEMO)/tiny-internvl
	$(PY) -m m2se.data.demo --out $(DEMO)/data
	$(PY) -m m2se.data.inspect $(DEMO)/data/first_stage.json $(DEMO)/data/second_stage.json \
		$(DEMO)/data/test/*.json --media-root $(DEMO)/data --model $(DEMO)/tiny-internvl --decode --plot $(DEMO)/inspect.png
	$(PY) train.py experiment=demo stage=first hydra.run.dir=$(DEMO)/runs/first
	$(PY) train.py experiment=demo stage=second ckpt=$(DEMO)/runs/first/checkpoints/last.ckpt \
		hydra.run.dir=$(DEMO)/runs/second
	$(PY) evaluate.py experiment=demo task=all ckpt=$(DEMO)/runs/second/adapter hydra.run.dir=$(DEMO)/eval

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(DEMO) outputs .pytest_cache
