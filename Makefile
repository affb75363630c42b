# rjcma — two commands on a fresh machine:
#   make book   the main job (demo profile): set-up → demo corpus → preprocessing → training → notebooks → HTML book
#   make test   the test suite (sets up what is missing first)
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RJCMA  := $(VENV)/bin/rjcma
STAMP  := $(VENV)/.rjcma-setup
PROFILE ?= demo
# folds of the six-fold fusion check in make train
FOLDS ?= 0,1,2,3,4,5
TORCH_PINS := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0
APT_PACKAGES := ffmpeg espeak-ng
# time of each step of the main job
T = /usr/bin/env TIMEFORMAT='  [%1R s]' bash -c 'time "$$@"' --

.PHONY: setup system-deps browser-deps book demo-corpus preprocess train notebooks test test-fast lab bench clean distclean help

help:
	@echo "make book   main job: demo corpus → preprocessing → training → notebooks → book (_build/html/index.html)"
	@echo "make test   the tests"
	@echo "make setup  create $(VENV) and install everything (run by book/test when missing)"
	@echo "make lab    JupyterLab on notebooks/ with the package importable"

## ---- set-up ------------------------------------------------------------------------------------
setup: system-deps $(STAMP)

# system tools: installed with apt-get when missing and running as root, else the exact command to run
system-deps:
	@missing=""; for t in ffmpeg espeak-ng; do command -v $$t >/dev/null || missing="$$missing $$t"; done
	if [ -n "$$missing" ]; then
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	    echo "setup: installing$$missing with apt-get"
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null
	  else
	    echo "setup: missing$$missing. Run:  sudo apt-get install -y $(APT_PACKAGES)   (or: conda env create -f environment.yml)" >&2
	    exit 1
	  fi
	fi

# headless Chromium for the browser test of the book (Debian's package)
browser-deps:
	@if ! command -v chromium >/dev/null; then
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	    echo "setup: installing chromium with apt-get"
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	  else
	    echo "setup: chromium missing; the browser test will be skipped. Run:  sudo apt-get install -y chromium" >&2
	  fi
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[test,book,punctuation]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	$(PY) -m rjcma.book --setup-assets
	touch $(STAMP)

## ---- main job ----------------------------------------------------------------------------------
book: setup
	@start=$$(date +%s)
	echo "== 1/5 demo corpus";   $(T) $(MAKE) -s demo-corpus
	echo "== 2/5 preprocessing"; $(T) $(RJCMA) preprocess --profile $(PROFILE)
	echo "== 3/5 training";      $(T) $(MAKE) -s train
	echo "== 4/5 notebooks + 5/5 book"; $(T) $(RJCMA) book --profile $(PROFILE)
	echo "make book: done in $$(( $$(date +%s) - start )) s — open _build/html/index.html"

demo-corpus: setup
	$(RJCMA) synth --out data/demo_corpus  # returns at once when the corpus is complete and of this generator version

train: setup
	$(RJCMA) cv --profile $(PROFILE)
	$(RJCMA) ablate --profile $(PROFILE)
	$(RJCMA) compare --profile $(PROFILE)
	$(RJCMA) compare --profile $(PROFILE) --folds $(FOLDS) --models unimodal:audio,unimodal:visual,unimodal:text,rjcma

## ---- tests -------------------------------------------------------------------------------------
test: setup browser-deps
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser"

## ---- other -------------------------------------------------------------------------------------
lab: setup
	$(PY) -m rjcma.book --lab $(LAB_ARGS)

bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf _build results .pytest_cache

distclean: clean
	rm -rf data $(VENV)
