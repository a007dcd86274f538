# Customer Archive — every target creates its own virtual environment from pyproject.toml.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ENTITIES ?= 5000
SEED     ?= 42

.PHONY: setup run test lint dev bench bench-accuracy bench-febrl bench-large bench-cli clean report-screenshot

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

## run: generate the demo exports (if absent) and run the whole pipeline into data/warehouse.duckdb
run: $(STAMP)
	$(BIN)/customer-archive demo --entities $(ENTITIES) --seed $(SEED) --out data/demo
	$(BIN)/customer-archive run --config archive.yml --warehouse data/warehouse.duckdb --demo-truth data/demo/truth.csv

## test: lint and the whole test suite (what CI runs)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## dev: the Dagster UI over the same definitions
dev: $(STAMP)
	mkdir -p data/dagster_home && cp pipelines/dagster.yaml data/dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/data/dagster_home $(BIN)/dagster dev -m pipelines.definitions

clean:
	rm -rf $(VENV) data

## report-screenshot: render the latest HTML quality report in headless Chromium → report.png beside it
report-screenshot: $(STAMP)
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "CJK" || \
		{ apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk; }
	$(BIN)/python -m expectations.screenshot "$$(cat data/reports/latest.txt)"

## bench: end-to-end pipeline at 10 k and 100 k source records (3 runs each, medians, incremental
## 1 % run), then the sources / cleaning / dedupe stage benchmarks at moderate sizes; figures are
## appended to BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --records 10000 100000 --repeat 3
	$(BIN)/python benchmarks/bench_sources.py --rows 200000
	$(BIN)/python benchmarks/bench_cleaning.py --rows 200000
	$(BIN)/python benchmarks/bench_dedupe.py --entities 20000

## bench-cli: start-up of `customer-archive sql "SELECT 1"` (medians, heaviest imports)
bench-cli: $(STAMP)
	$(BIN)/python benchmarks/bench_cli_startup.py --repeat 15

## bench-febrl: FEBRL 3 and 4 through `customer-archive run` with the YAML of
## benchmarks/configs/ only (pairwise / B-cubed P/R/F1 vs truth), appended to BENCHMARKS.md;
## part of bench-accuracy (a prerequisite, so another bench-accuracy recipe can sit beside it)
bench-febrl: $(STAMP)
	PYTHONPATH=. $(BIN)/python benchmarks/febrl_run.py febrl3 febrl4 --append BENCHMARKS.md

bench-accuracy: bench-febrl

## bench-large: 1 M source records end to end (full run + incremental 1 % run); takes many minutes
bench-large: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --records 1000000 --repeat 1

## bench-nightly: 30-night replay at 100 k source records (full sales re-exports, deltas, deletions,
## late and repeated files); every night a run, then a full rebuild to compare; figures to BENCHMARKS.md
.PHONY: bench-nightly
NIGHTS  ?= 30
RECORDS ?= 100000
bench-nightly: $(STAMP)
	$(BIN)/python benchmarks/bench_nightly.py --records $(RECORDS) --nights $(NIGHTS)

## bench-splink: our dedupe vs Splink 5 (DuckDB) on the same cleaned records, Splink in .venv-bench
.PHONY: bench-splink
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed-stamp: benchmarks/requirements-splink.txt $(STAMP)
	$(PYTHON) -m venv $(BENCH_VENV)
	@echo '*' > $(BENCH_VENV)/.gitignore
	$(BIN)/uv pip install -q --python $(BENCH_VENV)/bin/python -r benchmarks/requirements-splink.txt
	@touch $@

bench-splink: $(BENCH_VENV)/.installed-stamp
	$(BIN)/python benchmarks/bench_splink.py --records 10000 100000

## bench-accuracy: `customer-archive run` on the demo and the external labelled corpus
## (../shared/corpus/cn_2k, cn_20k), pairwise + B-cubed P/R/F1 and every missed / false pair
## classified (not a candidate, below review, review band, hard rule, refused by clustering),
## split by hard case; the summary table is appended to BENCHMARKS.md
.PHONY: bench-accuracy
bench-accuracy: $(STAMP)
	$(BIN)/python benchmarks/bench_accuracy.py --sets demo cn_2k cn_20k --append
