# make demo   set up .venv, build the tiny model and the demo dataset, inspect it, train both stages, evaluate after each
# make test   set up .venv and run the test suite (offline)
# make lint   ruff
# make lock   re-resolve requirements.lock: the newest versions pyproject.toml allows (then run make test)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of this version lies on the development machines' disk; override for CUDA machines.
TORCH_SPEC ?= torch==2.13.0
DEMO ?= demo_out
# experiment=demo reads demo_out/ by default; these point it at $(DEMO).
DEMO_PATHS = model.path=$(DEMO)/tiny-internvl data.data_dir=$(DEMO)/data
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= disabled
export TOKENIZERS_PARALLELISM := false

PIP := -m pip install -q --disable-pip-version-check

.PHONY: setup demo test lint lock clean

setup: $(VENV)/.installed

# Reuses an existing .venv; reinstalls when the lock or pyproject.toml changes. The lock pins every
# package the suite passed with (torch included, installed first so the local CPU wheel is found);
# the project itself goes on top without resolving anything, and pip check proves the set whole.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP) "$(TORCH_SPEC)"
	$(PY) $(PIP) -r requirements.lock
	$(PY) $(PIP) --no-deps -e .
	$(PY) -m pip check
	touch $@

# A fresh resolution in a throwaway venv. torch's local tag (+cpu) is dropped so that a CUDA machine
# gets the same release; decord keeps pyproject's platform marker.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python $(PIP) "$(TORCH_SPEC)"
	.lock-venv/bin/python $(PIP) ".[dev]"
	{ echo "# make lock: every package the test suite passed with (pyproject.toml keeps the ranges for library users)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^m2se' \
	  | sed -e 's/^torch==\([^+]*\)+.*/torch==\1/' \
	        -e "s/^decord==.*/&; platform_machine == 'x86_64' and sys_platform != 'darwin'/"; } > requirements.lock
	rm -rf .lock-venv

# Two evaluations, each with every task's baselines beside it: eval_first after stage one (msa, mer,
# fer), eval after stage two (msa, erc, eri, ecpe; fer, which only stage one trains, forgotten), then
# both side by side.
demo: setup
	$(PY) -m m2se.model.tiny --out $(DEMO)/tiny-internvl --overwrite
	$(PY) -m m2se.data.demo --out $(DEMO)/data
	$(PY) -m m2se.data.inspect $(DEMO)/data/first_stage.json $(DEMO)/data/second_stage.json \
		$(DEMO)/data/test/*.json --media-root $(DEMO)/data --model $(DEMO)/tiny-internvl --decode --plot $(DEMO)/inspect.png
	$(PY) train.py experiment=demo $(DEMO_PATHS) stage=first hydra.run.dir=$(DEMO)/runs/first
	$(PY) train.py experiment=demo $(DEMO_PATHS) stage=second ckpt=$(DEMO)/runs/first/checkpoints/last.ckpt \
		hydra.run.dir=$(DEMO)/runs/second
	$(PY) evaluate.py experiment=demo $(DEMO_PATHS) task=all ckpt=$(DEMO)/runs/first/adapter hydra.run.dir=$(DEMO)/eval_first
	$(PY) evaluate.py experiment=demo $(DEMO_PATHS) task=all ckpt=$(DEMO)/runs/second/adapter hydra.run.dir=$(DEMO)/eval
	$(PY) -m m2se.compare_runs $(DEMO)/eval_first $(DEMO)/eval

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(DEMO) outputs .pytest_cache .lock-venv
