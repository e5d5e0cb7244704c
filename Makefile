# Two commands matter: `make run` (set up, index seeds/, serve) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
DOCS ?= seeds
INDEX ?= index

.PHONY: setup run index test test-full lint format bench bench-scale bench-throughput browser clean postgres postgres-stop

setup: $(VENV)/.installed

# torch is pinned first: on these machines torch==2.13.0 is a CPU build from local disk; an
# unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

run: setup
	$(VENV)/bin/qa serve --docs $(DOCS) --index $(INDEX)

index: setup
	$(VENV)/bin/qa index --docs $(DOCS) --index $(INDEX)

# Debian's chromium for the browser test (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v /usr/bin/chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) || \
	  echo "warning: could not install chromium; the browser test will be skipped"

# axe-core (accessibility rules) from npm, injected into the page by the browser test.
AXE := tests/node_modules/axe-core/axe.min.js
$(AXE):
	@command -v npm >/dev/null 2>&1 && npm install --no-save --no-audit --no-fund --prefix tests axe-core@4 >/dev/null || \
	  echo "warning: could not install axe-core with npm; the accessibility checks will be skipped"

# The fast default lane (lint and every test that needs no real model or server, about a minute);
# `make test-full` runs the rest: the real models, servers, browser and reliability suites.
test: setup
	$(VENV)/bin/ruff check qa tests bench
	$(VENV)/bin/ruff format --check qa tests bench
	$(VENV)/bin/pytest -q -m "not full and not slow"

test-full: setup browser $(AXE)
	$(VENV)/bin/pytest -q -m "full or slow"

lint: setup
	$(VENV)/bin/ruff check qa tests bench
	$(VENV)/bin/ruff format --check qa tests bench

format: setup
	$(VENV)/bin/ruff check --fix qa tests bench
	$(VENV)/bin/ruff format qa tests bench

bench: setup
	$(PY) bench/run.py

# Scale: part A at 3k summaries (real model, ~15 min) and part B at 1M vectors. For 30k/100k:
# make bench-scale SCALE_ARGS="--sizes 3000,30000,100000 --fake-from 30000"
bench-scale: setup
	nice -n 10 $(PY) bench/scale.py $(SCALE_ARGS)

# /ask under 1 and 32 clients with and without reranking, and cold start of qa ask/serve;
# copies a built corpus index (BENCH_INDEX, default /work/idx-corpus) to a temp folder.
bench-throughput: setup
	$(PY) bench/throughput.py $(if $(BENCH_INDEX),--index-from $(BENCH_INDEX)) $(THROUGHPUT_ARGS)

# A local PostgreSQL + pgvector for `--store` (data in .pgdata/, run as the user postgres when
# root); the URL is the last line printed.
postgres: setup
	$(PY) -m qa.index.localpg start --data .pgdata

postgres-stop: setup
	$(PY) -m qa.index.localpg stop --data .pgdata

clean:
	rm -rf $(VENV) $(INDEX) *.egg-info
