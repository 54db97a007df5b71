# Two entry points (README, Quick start): `make scenarios` and `make test`.
# Both create .venv with python3, install the project with its pinned dependencies
# (constraints.txt), then run pytest. Only python3 (with venv) and make are needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: scenarios test venv proto bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

scenarios: $(STAMP)
	$(BIN)/python -m pytest scenarios/ $(PYTEST_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest tests/ scenarios/ $(PYTEST_ARGS)

proto: $(STAMP)
	$(BIN)/python -m proto.generate

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
