# make serve: set up (venv, pip install) and serve on 127.0.0.1:3301; the data
#             is kept in data/ (the WAL; ignored by git) across restarts.
# make test:  set up, install Debian's tarantool (reference server and net.box
#             client for the tests) and Debian's chromium and chromium-driver
#             (the river's page is tested in a headless browser) if missing,
#             lint and type-check (ruff, mypy), run every test.
# make fuzz:  the raw-protocol fuzz tests, the comparison of the compiled
#             accelerator with its pure-Python twin, and the transactions'
#             serializability model check, at length
#             (STYX_FUZZ_EXAMPLES, default 20000 examples each; the suite runs
#             150 and 300).
# make fuzz-diff: the generated differential test against Tarantool 2.6 at
#             length (DIFF_EXAMPLES sequences, default 5000; the suite runs 400).
# make pictures: the river's pictures in docs/ (river*.svg), recorded from a
#             real run (`styx river record`); tests/test_river_record.py makes
#             and checks them on every `make test`.
# make peers: run tarantool-python's, asynctnt's and Node tarantool-driver's own
#             test suites against Styx (this tree, and PEERS_BEFORE for the
#             "before" column); writes bench/peers/RESULTS.md. Needs node/npm.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

DIFF_EXAMPLES ?= 5000

.PHONY: serve test lint fuzz fuzz-diff bench peers peers-lua pictures tarantool browser clean

$(STAMP): pyproject.toml setup.py styx/protocol/_accel.c styx/_cbus.c styx/_slots.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

tarantool:
	@command -v tarantool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q tarantool; }

browser:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; }

serve: $(STAMP)
	$(BIN)/styx serve examples/app.py --listen 127.0.0.1:3301 --wal-mode write --work-dir data

test: $(STAMP) tarantool browser lint
	$(BIN)/python -m pytest -q

# Lint and types (configured in pyproject.toml); part of `make test`.
lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/mypy

fuzz: $(STAMP) tarantool
	STYX_FUZZ_EXAMPLES=$${STYX_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q tests/test_fuzz.py
	STYX_FUZZ_EXAMPLES=$${STYX_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q --timeout=0 tests/unit/test_accel.py
	STYX_FUZZ_EXAMPLES=$${STYX_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q --timeout=0 tests/unit/test_txn_model.py

fuzz-diff: $(STAMP) tarantool
	STYX_DIFF_EXAMPLES=$(DIFF_EXAMPLES) $(BIN)/python -m pytest -q -p no:logging --timeout=0 \
	  tests/test_box_generated.py

bench: $(STAMP) tarantool
	$(BIN)/python bench/run.py

pictures: $(STAMP)
	$(BIN)/styx river record docs/river.svg --parts

PEERS_BEFORE ?= 1fc298f
peers: $(STAMP)
	$(BIN)/python bench/peers/run.py --before $(PEERS_BEFORE)

# make peers-lua: the same suites with their own Lua setup scripts, on the
#                 `tarantool` on PATH and on Styx; writes bench/peers/RESULTS-lua.md.
peers-lua: $(STAMP)
	$(BIN)/python bench/peers/run.py --lua

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
