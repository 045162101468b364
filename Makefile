# lnlens: `make demo` and `make test` are the only two commands a new user needs.
# Both create .venv and install what they need on first use; re-runs skip the install
# unless a pyproject.toml changed.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test lint install clean bench proto demo model fee-model

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
# scripts/real-things.sh puts ../shared/regtest's real lightningd/bitcoind on PATH and gives ../shared/charge-lnd
# its own virtualenv (both cached under .cache/); with CI=true a real thing it cannot prepare fails the run.
test: lint
	@env_lines=$$(bash scripts/real-things.sh) || exit 1; eval "$$env_lines"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - the suite is broken" >&2; exit 1; fi; \
	exit $$rc

# The shipped liquidity model, retrained reproducibly (fixed seeds, simulated mainnet data): see docs/MODEL.md.
model: $(STAMP)
	$(BIN)/python models/train/make_default.py

# The shipped fee-response model (model_driven's fee opinions), trained and judged on held-out seeds: docs/MODEL.md.
fee-model: $(STAMP)
	$(BIN)/python models/train/fee_response.py --out models/lnlens_models

# One simulated day of a mid-size routing node (c-otto.de) on the real mainnet graph, with the
# auto-recovery rebalancer as a baseline; the database goes to ./out/ (git-ignored).
demo: $(STAMP)
	@rm -f out/demo.sqlite3 out/demo.sqlite3-wal out/demo.sqlite3-shm
	@mkdir -p -m 700 out
	$(BIN)/lnlens sim run --network mainnet --days 1 --seed 1 --db out/demo.sqlite3 --rebalancer auto-recovery
	$(BIN)/lnlens --db out/demo.sqlite3 opportunities --limit 10 --out out/opportunities.json
	$(BIN)/lnlens --db out/demo.sqlite3 report --out out/report

# Every benchmarks/bench_*.py prints its figures with a same-run baseline.
bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Regenerate the LND message modules (backends/lnlens_lnd/_proto) from backends/lnlens_lnd/proto/*.proto.
proto: $(STAMP)
	$(BIN)/python -m lnlens_lnd.protogen

clean:
	rm -rf $(VENV) .cache build dist .pytest_cache .ruff_cache
