# Quick start: `make demo` and `make test`. Both create (or reuse) .venv and install what they need.
# torch is pinned to 2.13.0 and installed first, so that nothing else pulls a different build.
VENV ?= .venv
PY := $(VENV)/bin/python
HS := $(VENV)/bin/headstart
STAMP := $(VENV)/.installed
DEMO ?= runs/demo

.PHONY: install assets test lint demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[assets,dev]'
	touch $(STAMP)

install: $(STAMP)

assets: $(STAMP)
	$(HS) assets

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts recipes

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO)

clean:
	rm -rf $(DEMO)
