# Two commands for a fresh clone: `make score` (the main job) and `make test`.
# The first use creates .venv and installs the pinned environment (about 4-5 minutes).
# `make web` serves the browser client (needs Node.js and npm for its runtime, LiteRT.js).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.diqa-installed
WEB := clients/web
WEB_STAMP := $(WEB)/node_modules/.diqa-installed
MODEL ?=

.PHONY: score test venv web web-deps clean-venv

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund
	touch $(WEB_STAMP)

# the browser test needs LiteRT.js (@litertjs/core) from npm; without npm it skips and says why
web-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(WEB_STAMP); \
	else echo "npm not found: the browser client's test will skip (install Node.js and npm)"; fi

score: $(STAMP)
	$(VENV)/bin/diqa-edge score samples/ $(if $(MODEL),--model $(MODEL))

test: $(STAMP) web-deps
	$(PY) -m pytest -q

web: $(STAMP) $(WEB_STAMP)
	$(VENV)/bin/diqa-edge web

clean-venv:
	rm -rf $(VENV)
