# Every target installs what it needs into .venv first, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/cityrelay up

# The reporter page is tested in a real headless Chromium: Debian's package, never a download.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei fonts-noto-color-emoji

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# ruff, and the layers contract (pyproject's [tool.importlinter]): imports point one way.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# The benchmarks' load generator: Debian's wrk, like the browser never a download.
WRK := /usr/bin/wrk

$(WRK):
	@echo "installing Debian's wrk for the benchmarks"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk

# Every benchmarks/bench_*.py, one after the other, each with its baseline in the same run; each
# writes benchmarks/results/<date>-<scenario>.json. BENCH_SMOKE=1 runs them on a tiny load (and
# writes to a temporary folder, or to BENCH_RESULTS_DIR).
bench: $(STAMP) $(WRK) $(CHROMIUM)
	@set -e; for script in benchmarks/bench_*.py; do \
		echo "== $$script"; started=$$(date +%s); $(BIN)/python $$script; \
		echo "== $$script: $$(( $$(date +%s) - started )) s"; \
	done

clean:
	rm -rf $(VENV) instance .pytest_cache
