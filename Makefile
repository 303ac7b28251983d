# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; the package itself asks only for torch>=2.4.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup system browser run test bench clean

setup: system $(STAMP)

# Debian packages, installed when run as root and missing; elsewhere a note says what to install.
define apt_install
	@command -v $(1) >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "note: install $(2) ($(3))"; \
	  fi; }
endef

# FluidSynth renders WAV audio with a piano SoundFont; without it, pretty_midi's sine waves stand in.
system:
	$(call apt_install,fluidsynth,fluidsynth,for piano audio: apt-get install fluidsynth or brew install fluid-synth)

# Chromium runs the studio's end-to-end test, driven by Playwright (a Python package in .[dev]).
browser:
	$(call apt_install,chromium,chromium,for the browser test: apt-get install chromium)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Build the Bach corpus, train the small preset for a few minutes (once), and compose three pieces.
run: setup
	$(BIN)/musiclstm data --source bach --out data/bach --workers 2
	test -f runs/bach-small/model.safetensors || { rm -rf runs/bach-small && \
	  $(BIN)/musiclstm train --data data/bach --out runs/bach-small --preset small --epochs 1000 --max-minutes 3; }
	$(BIN)/musiclstm generate --model runs/bach-small --out out --num-outputs 3 --choose sample

test: setup browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

bench: setup
	cd benchmarks && ../$(BIN)/python bench_corpus.py && ../$(BIN)/python bench_train.py

clean:
	rm -rf $(VENV) data runs out build *.egg-info src/*.egg-info .pytest_cache
