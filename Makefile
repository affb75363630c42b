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
# trial-level preprocessing processes in make book (the store's bytes do not depend on it)
PREPROCESS_WORKERS ?= 2
# notebooks executed side by side in make book (each reads what make train wrote)
BOOK_JOBS ?= 2
# pytest worker processes in make test (pytest-xdist; the book's tests share one of them)
TEST_WORKERS ?= 2
TORCH_PINS := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0
EXTRAS := test,book,punctuation
# `$(call PIP_INSTALL,ARGS)`: install ARGS into the venv with uv, else with pip
PIP_INSTALL = $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $(1) || { echo "setup: uv failed; installing with pip"; \
  $(PY) -m pip install -q $(1); }
APT_PACKAGES := ffmpeg espeak-ng
# `$(TIMED) NAME CMD...`: run CMD, print its wall time and, when $RJCMA_TIMES names a file, append NAME<TAB>seconds
TIMED = /usr/bin/env bash -c 't0=$$(date +%s%N); "$${@:2}" || exit $$?; ms=$$(( ($$(date +%s%N) - t0) / 1000000 )); \
  printf "  [%s: %d.%d s]\n" "$$1" $$((ms / 1000)) $$((ms % 1000 / 100)); \
  [ -z "$${RJCMA_TIMES:-}" ] || printf "%s\t%d.%03d\n" "$$1" $$((ms / 1000)) $$((ms % 1000)) >> "$$RJCMA_TIMES"' --
# the per-step table that ends `make book` (a step's parts, "step: part", listed after it)
TIMES_TABLE = awk -F'\t' '{ n[NR] = $$1; s[NR] = $$2 } END { printf "| step | seconds |\n|---|---:|\n"; \
  for (i = 1; i <= NR; i++) if (index(n[i], ": ") == 0) { printf "| %s | %.1f |\n", n[i], s[i]; \
    for (j = 1; j <= NR; j++) if (index(n[j], n[i] ": ") == 1) printf "| %s | %.1f |\n", n[j], s[j] } }'

.PHONY: setup system-deps browser-deps book demo-corpus train test test-fast lab bench clean distclean help

help:
	@echo "make book          main job: demo corpus → preprocessing → training → notebooks → book (_build/html/index.html)"
	@echo "make test          the whole test suite (sets up what is missing first, Chromium included)"
	@echo "make test-fast     the tests without the slow and the browser ones"
	@echo "make setup         create $(VENV) and install everything (run by book/test when missing)"
	@echo "make system-deps   ffmpeg and espeak-ng (apt-get when root, else the command to run)"
	@echo "make browser-deps  Chromium for the browser test of the book (apt-get when root)"
	@echo "make demo-corpus   only the demo corpus (data/demo_corpus)"
	@echo "make train         only the training runs the book reads (results/demo/)"
	@echo "make lab           JupyterLab on notebooks/: run 01_data ... 13_paper_vs_code in order (each builds what it needs)"
	@echo "make bench         the CPU benchmarks (benchmarks/*.py; results in benchmarks/RESULTS.md)"
	@echo "make bench-gpu     the paper path on one GPU (_build/bench-gpu; appended to benchmarks/RESULTS.md)"
	@echo "make clean         remove _build, results and the pytest cache"
	@echo "make distclean     clean, and remove data/ and $(VENV)"

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
	$(PY) -m pip install -q --upgrade pip uv
	# one resolver pass for torch's triple and the package (pyproject.toml pins the same triple); uv (from PyPI)
	# downloads and unpacks in parallel, about 3x faster than pip for torch's wheels; pip takes over when uv fails
	# (uv reads no pip.conf: a machine that reaches PyPI only through an index named there); --compile-bytecode as pip
# does: with PYTHONDONTWRITEBYTECODE set, a venv without .pyc files recompiles torch in every kernel (+25 % notebooks)
	$(call PIP_INSTALL,$(TORCH_PINS) -e ".[$(EXTRAS)]")
	# MTCNN weight files only (the face detector loads them into its own networks); without --no-deps its old torch pin would replace ours
	$(call PIP_INSTALL,--no-deps facenet-pytorch==2.6.0)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	$(RJCMA) book --setup-assets
	touch $(STAMP)

## ---- main job ----------------------------------------------------------------------------------
# set-up is a timed step (not a prerequisite), so the table holds the whole job; the table is also written to
# _build/make-book-times.tsv and printed when a step fails (with the steps done so far)
book:
	@export RJCMA_TIMES=$$(mktemp); start=$$(date +%s%N); ok=0
	report() {
	  ms=$$(( ($$(date +%s%N) - start) / 1000000 ))
	  printf "total\t%d.%03d\n" $$((ms / 1000)) $$((ms % 1000)) >> "$$RJCMA_TIMES"
	  echo; echo "make book: time per step$$([ $$ok = 1 ] || echo ' (FAILED; steps done so far)')"; $(TIMES_TABLE) "$$RJCMA_TIMES"
	  # which path ran: the arithmetic and the CPU class (the same float32 job took a third longer on an AVX2-only CPU)
	  machine=$$($(RJCMA) info --machine --profile $(PROFILE) 2>/dev/null) && echo "ran: $$machine" || machine=""
	  if [ -d _build ]; then cp "$$RJCMA_TIMES" _build/make-book-times.tsv; echo "$$machine" > _build/make-book-machine.txt; fi
	  rm -f "$$RJCMA_TIMES"
	}
	trap report EXIT
	echo "== 0/6 set-up";        $(TIMED) "set-up" $(MAKE) -s setup
	echo "== 1/6 demo corpus";   $(TIMED) "demo corpus" $(MAKE) -s demo-corpus
	echo "== 2/6 preprocessing"; $(TIMED) "preprocessing" $(RJCMA) preprocess --profile $(PROFILE) --workers $(PREPROCESS_WORKERS)
	echo "== 3/6 training";      $(TIMED) "training" $(MAKE) -s train
	echo "== 4/6 notebooks";     $(TIMED) "notebooks" $(RJCMA) book --profile $(PROFILE) --no-build --jobs $(BOOK_JOBS)
	echo "== 5/6 book";          $(TIMED) "book (HTML)" $(RJCMA) book --profile $(PROFILE) --no-execute
	ok=1
	echo "make book: done in $$(( ($$(date +%s%N) - start) / 1000000000 )) s — open _build/html/index.html"

demo-corpus: setup
	$(RJCMA) synth --out data/demo_corpus  # returns at once when the corpus is complete and of this generator version

# every run the book reads (cv, ablate, compare, the six-fold check, the exercises') in one pool of workers
train: setup
	$(RJCMA) experiments --profile $(PROFILE)

## ---- tests -------------------------------------------------------------------------------------
test: setup browser-deps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test-fast: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not browser"

## ---- other -------------------------------------------------------------------------------------
lab: setup
	$(RJCMA) lab $(LAB_ARGS)

bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b; done

# the paper path on one GPU (< 8 min): gpu.json + gpu.md in _build/bench-gpu, the section appended to RESULTS.md
.PHONY: bench-gpu
bench-gpu: setup
	PY=$(PY) bash benchmarks/gpu.sh _build/bench-gpu --append

clean:
	rm -rf _build results .pytest_cache

distclean: clean
	rm -rf data $(VENV)
