# make serve: set up (venv, pip install) and serve on 127.0.0.1:3301.
# make test:  set up, install Debian's tarantool (reference server and net.box
#             client for the tests) if missing, run every test.
# make fuzz-diff: the generated differential test against Tarantool 2.6 at
#             length (FUZZ_EXAMPLES sequences, default 5000; the suite runs 400).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

FUZZ_EXAMPLES ?= 5000

.PHONY: serve test bench tarantool clean fuzz-diff

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

tarantool:
	@command -v tarantool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q tarantool; }

serve: $(STAMP)
	$(BIN)/styx serve examples/app.py --listen 127.0.0.1:3301

test: $(STAMP) tarantool
	$(BIN)/python -m pytest -q

fuzz-diff: $(STAMP) tarantool
	STYX_DIFF_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:logging --timeout=0 \
	  tests/test_box_generated.py

bench: $(STAMP) tarantool
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
