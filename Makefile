# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint lab install clean-venv bench

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name dbaudit --display-name "dbaudit (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dbaudit demo --out-dir reports

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lib tests bench
	$(BIN)/mypy

# The notebooks name the kernel `dbaudit`: this project's venv, installed into it by the stamp above.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/fingerprint.py
	$(BIN)/python bench/restorecheck.py
	$(BIN)/python bench/dumpcheck.py
	$(BIN)/python bench/pgrestore.py --rounds 5

clean-venv:
	rm -rf $(VENV)
