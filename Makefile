# `make test` and `make demo` each set up .venv on their own; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench

typecheck: $(STAMP)
	$(BIN)/mypy reconciler

unit: $(STAMP)
	$(BIN)/pytest -n auto

test: lint typecheck unit

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" ./examples/demo.sh

bench: $(STAMP)
	$(BIN)/python bench/plan_scale.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
