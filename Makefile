# Two commands for a fresh clone: `make score` (the main job) and `make test`.
# The first use creates .venv and installs the pinned environment (about 4-5 minutes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.diqa-installed
MODEL ?=

.PHONY: score test venv clean-venv

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

score: $(STAMP)
	$(VENV)/bin/diqa-edge score samples/ $(if $(MODEL),--model $(MODEL))

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
