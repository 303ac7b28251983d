# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; the package itself asks only for torch>=2.4.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup system browser engraver run bundled-model test docs bench clean

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
# python-rtmidi (live's MIDI ports) loads ALSA's library (libasound2; libasound2t64 from Debian 13 on).
system:
	$(call apt_install,fluidsynth,fluidsynth,for piano audio: apt-get install fluidsynth or brew install fluid-synth)
	@ldconfig -p 2>/dev/null | grep -q libasound.so.2 || [ "$$(uname)" != Linux ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libasound2t64 >/dev/null 2>&1 || \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libasound2 >/dev/null; }; \
	  else \
	    echo "note: install libasound2 (for live MIDI ports: apt-get install libasound2)"; \
	  fi; }

# Chromium runs the studio's end-to-end test, driven by Playwright (a Python package in .[dev]).
browser:
	$(call apt_install,chromium,chromium,for the browser test: apt-get install chromium)

# LilyPond engraves `--score pdf`; the test of that PDF needs it (without it, musiclstm says what to install).
engraver:
	$(call apt_install,lilypond,lilypond,for --score pdf: apt-get install lilypond or brew install lilypond)

# pip takes the pinned torch (uv would not find the CPU build on this disk); uv installs the rest in
# seconds where pip takes half a minute (measured: docs, development), and pip stands in if uv cannot;
# both compile bytecode at install, so that no command compiles its imports again (PYTHONDONTWRITEBYTECODE).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_PIN)" uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]" || $(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m compileall -q src/musiclstm >/dev/null
	touch $(STAMP)

# Compose three pieces with the bundled Bach model: MIDI, WAV, PNG and JSON in out/.
run: setup
	$(BIN)/musiclstm generate --out out --num-outputs 3 --force

# How the bundled model was made: the default network (NADE head reading the step before; phrase ends read) with
# transposition for 40 minutes on 2 cores (MODEL_CARD.md), under the training recipe of its day (the plateau
# schedule, no weight average, the specification's dropouts), which the flags keep so that this remakes it.
BUNDLE_RUN := runs/bach-bundled
bundled-model: setup
	$(BIN)/musiclstm data --source bach --out data/bach --workers 2
	rm -rf $(BUNDLE_RUN)
	$(BIN)/musiclstm train --data data/bach --out $(BUNDLE_RUN) --max-minutes 40 --transpose --seed 0 \
	  --schedule plateau --no-average --input-dropout 0.3 --recurrent-dropout 0.2 --dense-dropout 0.4
	$(BIN)/musiclstm generate --model $(BUNDLE_RUN) --out $(BUNDLE_RUN)/samples --num-outputs 8 \
	  --seed 1 --no-audio
	$(BIN)/musiclstm evaluate --model $(BUNDLE_RUN) --data data/bach --split test \
	  --generated $(BUNDLE_RUN)/samples --json $(BUNDLE_RUN)/evaluation.json
	$(BIN)/musiclstm export --run $(BUNDLE_RUN) --out src/musiclstm/models/bach --evaluation $(BUNDLE_RUN)/evaluation.json \
	  --name "the bundled Bach chorale model" --made-by '`make bundled-model` (see the Makefile)'

test: setup browser engraver
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site
	$(BIN)/python -m pytest

# The manual as a site (MkDocs Material; the Python API from the docstrings): open build/site/index.html.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d build/site

bench: setup
	cd benchmarks && ../$(BIN)/python bench_corpus.py && ../$(BIN)/python bench_train.py

clean:
	rm -rf $(VENV) data runs out build *.egg-info src/*.egg-info .pytest_cache
