# Two commands for a fresh machine: `make demo` and `make test` (Python 3.11+ and the package index only).
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)
BIN := $(VENV)/bin
# The demo's size: every stage and both tuned models in under 2 minutes on 2 cores (README, Scale).
DEMO_CUSTOMERS ?= 5000
DEMO_TRIALS ?= 5
DEMO_SEED ?= 7
DEMO_AS_OF ?= 2025-11-01

.PHONY: install browser demo test lint format bench clean

$(VENV)/bin/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# `--inexact` keeps uv itself inside .venv when uv was bootstrapped there. Bytecode is compiled
# once here: where PYTHONDONTWRITEBYTECODE is set (CI, containers) every process would otherwise
# recompile mlflow, pandas and scikit-learn from source (~10 s per `portrait` command on 2 cores).
install: $(if $(shell command -v uv 2>/dev/null),,$(VENV)/bin/uv)
	$(UV) sync --frozen --inexact --quiet --compile-bytecode
	$(BIN)/python -m compileall -q -j 0 portrait features training serving experiments benchmarks > /dev/null

demo: install
	$(BIN)/portrait demo-data demo/data --customers $(DEMO_CUSTOMERS) --seed $(DEMO_SEED)
	$(BIN)/portrait run --data demo/data --as-of $(DEMO_AS_OF) --out demo/run --set models.n_trials=$(DEMO_TRIALS)
	@rm -f demo/keys.json demo/key-*
	@umask 077; for role in app staff marketer admin; do \
		$(BIN)/portrait keys add demo-$$role --role $$role --keys demo/keys.json | tail -1 > demo/key-$$role; done
	@umask 077; $(BIN)/portrait keys add demo-pages --role staff --role marketer --role admin --keys demo/keys.json | tail -1 > demo/key-pages
	@echo "keys:     one per role in demo/keys.json (hashed); the keys themselves are in demo/key-{app,staff,marketer,admin,pages}"
	@echo "service:  $(BIN)/portrait serve --run demo/run --keys demo/keys.json"
	@echo "pages:    http://127.0.0.1:3000/ui/ -> log in with the key in demo/key-pages"
	@echo "API:      curl -H \"Authorization: Bearer \$$(cat demo/key-app)\" -H 'content-type: application/json' -d '{\"customer_id\": \"C000001\"}' http://127.0.0.1:3000/recommend"

# Debian's chromium + chromedriver for the UI browser tests (never a browser download); needs root.
browser:
	@test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }

# pytest exits 5 when it collects no test: report it, do not fail (make would turn 5 into 2).
test: install browser
	@$(BIN)/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# `bench` adds the optional `peers` group (pyspark, for Spark FPGrowth in benchmarks/peers.py; needs Java 17+)
# and Debian's wrk (the HTTP load generator of benchmarks/serve.py; apt-get needs root).
bench: install
	$(UV) sync --frozen --inexact --quiet --compile-bytecode --group peers
	@command -v wrk >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }
	for b in benchmarks/[a-z]*.py; do $(BIN)/python -m benchmarks.$$(basename $$b .py) || exit 1; done

clean:
	rm -rf demo mlruns mlflow.db .pytest_cache
