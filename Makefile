# Two commands for a new user: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MODELS := models/manifest.json

.PHONY: setup models run test lint bench clean browser ffmpeg mpd realaudio

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "playlistgen needs Python 3.11 (essentia-tensorflow wheels); found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,convert]'
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/playlistgen models install --models-dir models

run: setup models
	mkdir -p library
	$(BIN)/playlistgen serve --library ./library

test: setup models browser ffmpeg mpd realaudio
	$(BIN)/ruff check playlistgen tests bench
	$(BIN)/python -m pytest

# Debian's chromium for the dashboard's headless-browser test (idempotent; needs root for apt-get).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing and apt-get needs root: the dashboard browser test will be skipped"; fi

# Debian's ffmpeg: the tests make m4a/AAC and video fixtures with it (the daemon itself decodes
# with Essentia's bundled FFmpeg and does not need it).
ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg; \
	  else echo "ffmpeg is missing and apt-get needs root: the m4a/video tests will be skipped"; fi

# Debian's mpd and mpc: the endless-radio tests start a real MPD with a generated config (null
# output); the README's stored-playlist recipe is run with mpc.
mpd:
	@{ command -v mpd && command -v mpc; } >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mpd mpc; \
	  else echo "mpd or mpc is missing and apt-get needs root: the MPD tests will be skipped"; fi

# A few real music tracks for the tests that compare analysers on real audio: the music of one
# Debian package (xmoto-data, GPL, ~32 MB download), unpacked into .cache/ (not committed).
REAL_AUDIO := .cache/real-audio
realaudio:
	@if [ ! -f $(REAL_AUDIO)/manifest.tsv ]; then \
	  mkdir -p $(REAL_AUDIO)/deb && cd $(REAL_AUDIO)/deb && \
	  { apt-get download -qq xmoto-data 2>/dev/null || { apt-get update -qq && apt-get download -qq xmoto-data; }; } && \
	  dpkg-deb --fsys-tarfile xmoto-data_*.deb | tar -x --wildcards './usr/share/games/xmoto/Textures/Musics/*.ogg' && \
	  mkdir -p ../xmoto && mv usr/share/games/xmoto/Textures/Musics/*.ogg ../xmoto/ && cd .. && rm -rf deb && \
	  ls xmoto/*.ogg | sed 's/$$/\txmoto-data/' > manifest.tsv \
	  || echo "could not fetch real audio (apt-get download xmoto-data): the real-audio tests will be skipped"; \
	fi

# `make bench` is the quick run (~10 min); `make bench FULL=1` the full one (< 45 min). Both write docs/benchmarks.md.
bench: setup models
	$(BIN)/python bench/run_all.py $(if $(FULL),,--quick) $(if $(CORPUS),--corpus $(CORPUS),)

clean:
	rm -rf $(VENV) build dist *.egg-info
