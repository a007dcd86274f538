# Customer Archive — every target creates its own virtual environment from pyproject.toml.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ENTITIES ?= 5000
SEED     ?= 42

.PHONY: setup run test lint dev bench bench-accuracy bench-febrl bench-large bench-cli bench-golden bench-publish bench-startup bench-match-nightly clean report-screenshot \
	browser-deps console bench-console \
	fonts dossier-screenshot

# Byte code is compiled at install (`--compile-bytecode`, and `compileall` for the project's
# own packages): a process started with PYTHONDONTWRITEBYTECODE=1 (containers, CI, this
# sandbox) otherwise compiles every module it imports from source on every start — ≈ 5 CPU s
# for Great Expectations alone, paid by every run (BENCHMARKS.md, "Nightly fixed costs").
PROJECT_PACKAGES := sources cleaning dedupe warehouse expectations pipelines console benchmarks
$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(PROJECT_PACKAGES) >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

## run: generate the demo exports (if absent) and run the whole pipeline into data/warehouse.duckdb
run: $(STAMP)
	$(BIN)/customer-archive demo --entities $(ENTITIES) --seed $(SEED) --out data/demo
	$(BIN)/customer-archive run --config archive.yml --warehouse data/warehouse.duckdb --demo-truth data/demo/truth.csv

## fonts: the CJK font embedded in dossier PDFs (fonts-wqy-microhei) and poppler-utils
## (pdftoppm for screenshots); best effort: apt-get when missing, a warning when it cannot
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@test -f $(CJK_FONT) && command -v pdftoppm >/dev/null 2>&1 || \
		{ (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			fonts-wqy-microhei poppler-utils >/dev/null) || \
		  echo "warning: could not install fonts-wqy-microhei/poppler-utils; dossier PDFs need" \
		       "a CJK font (set \$$CUSTOMER_ARCHIVE_CJK_FONT)"; }

## dossier-screenshot: render one demo dossier page to docs/img/dossier_page1.png (pdftoppm)
dossier-screenshot: $(STAMP) fonts
	$(BIN)/python -m pipelines.cli.filing_screenshot docs/img/dossier_page1.png

## browser-deps: Debian's chromium and CJK fonts for the browser tests (console, quality report);
## best effort: installs them as root when missing, never fails (those tests then skip, saying why)
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; } \
			>/dev/null 2>&1 || echo "browser-deps: apt-get failed; browser tests will skip"; \
	else echo "browser-deps: no root/apt; browser tests will skip (apt install chromium fonts-noto-cjk)"; fi

## test: lint and the whole test suite (what CI runs)
test: $(STAMP) browser-deps fonts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
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
report-screenshot: $(STAMP) browser-deps
	$(BIN)/python -m expectations.screenshot "$$(cat data/reports/latest.txt)"

## bench: end-to-end pipeline at 10 k and 100 k source records (3 runs each, medians, incremental
## 1 % run), then the sources / cleaning / dedupe stage benchmarks at moderate sizes; figures are
## appended to BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --records 10000 100000 --repeat 3
	$(BIN)/python benchmarks/bench_sources.py --rows 200000
	$(BIN)/python benchmarks/bench_cleaning.py --rows 200000
	$(BIN)/python benchmarks/bench_dedupe.py --entities 20000

## bench-golden: golden, golden-quality and publish stages alone, full build vs nightly on the
## same inputs, CPU seconds per stage at 100 k (needs bench_pipeline's cached data/bench/100000)
bench-golden: $(STAMP)
	$(BIN)/python benchmarks/bench_golden_nightly.py --records 100000

## bench-publish: the publish and snapshot stages alone (CPU, wall, resident memory), full and
## nightly, at 100 k records, each on copies of a run stopped just before publish; and golden,
## quality, publish, snapshot on a full run stopped before golden (needs data/bench/100000)
bench-publish: $(STAMP)
	$(BIN)/python benchmarks/bench_publish.py --prepare 100000 --repeat 3

## bench-match-nightly: the match stage alone, full vs nightly (stored link) at 100 k records
## (needs the data of `bench_pipeline.py --records 100000`)
bench-match-nightly: $(STAMP)
	$(BIN)/python benchmarks/bench_match_nightly.py --records 100000

## bench-cli: start-up of `customer-archive sql "SELECT 1"` (medians, heaviest imports)
bench-cli: $(STAMP)
	$(BIN)/python benchmarks/bench_cli_startup.py --repeat 15

## bench-startup: fixed start-up of `customer-archive run` per component (CPU and wall medians)
bench-startup: $(STAMP)
	$(BIN)/python benchmarks/bench_run_startup.py --repeat 7

## bench-febrl: FEBRL 3 and 4 through `customer-archive run` with the YAML of
## benchmarks/configs/ only (pairwise / B-cubed P/R/F1 vs truth), appended to BENCHMARKS.md;
## part of bench-accuracy (a prerequisite, so another bench-accuracy recipe can sit beside it)
bench-febrl: $(STAMP)
	PYTHONPATH=. $(BIN)/python benchmarks/febrl_run.py febrl3 febrl4 --append BENCHMARKS.md

bench-accuracy: bench-febrl

## bench-large: 1 M source records end to end (full run + incremental 1 % run); takes many minutes
bench-large: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --records 1000000 --repeat 3

## bench-growth: full runs at 10 k and 100 k with the settings of the 10 M rehearsal (10 match
## shards through the multiprocess executor, DuckDB memory_limit 6GB) and with the defaults; the
## whole process tree's CPU, peak RSS and disk per stage (docs/scaling.md "Growth")
.PHONY: bench-growth bench-10m
SCALE_ARGS ?= --shards 10 --memory-limit 6GB
bench-growth: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --records 10000 100000 --repeat 1 --no-incremental $(SCALE_ARGS)
	$(BIN)/python benchmarks/bench_pipeline.py --records 10000 100000 --repeat 1 --no-incremental

## bench-10m: the 10 M scale-out rehearsal: generates ≈ 4 GB of demo exports (data/bench/10000000),
## one full run with SCALE_ARGS, nice 10, watched twice: the benchmark stops the run above
## RUN_RSS_GB of tree RSS or at DEADLINE (UTC HH:MM) and reports the stages it reached; the outer
## watchdog kills everything above MAX_RSS_GB or at WATCH_DEADLINE (default: DEADLINE)
MAX_RSS_GB ?= 12
RUN_RSS_GB ?= 11.5
bench-10m: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/tree_watch.py --max-rss-gb $(MAX_RSS_GB) \
		$(if $(or $(WATCH_DEADLINE),$(DEADLINE)),--deadline $(or $(WATCH_DEADLINE),$(DEADLINE))) \
		--every 10 --log data/bench/logs/run10m.watchdog.log -- \
		$(BIN)/python benchmarks/bench_pipeline.py --records 10000000 --repeat 1 --no-incremental \
		$(SCALE_ARGS) --sample-every 2 --max-tree-rss-gb $(RUN_RSS_GB) $(if $(DEADLINE),--deadline $(DEADLINE))

## bench-nightly: 30-night replay at 100 k source records (full sales re-exports, deltas, deletions,
## late and repeated files); every night a run, then a full rebuild to compare; figures to BENCHMARKS.md
.PHONY: bench-nightly
NIGHTS  ?= 30
RECORDS ?= 100000
bench-nightly: $(STAMP)
	$(BIN)/python benchmarks/bench_nightly.py --records $(RECORDS) --nights $(NIGHTS)

## bench-determinism: one nightly repeated from one saved state (workers 1, 2, 2 with the matcher's
## threads finishing in reverse order); fails when a repeat's match/golden tables or rebuilt set differ
.PHONY: bench-determinism
DETERMINISM_ENTITIES ?= 3000
bench-determinism: $(STAMP)
	$(BIN)/python benchmarks/bench_nightly_determinism.py --entities $(DETERMINISM_ENTITIES) --repeats 2

## bench-late: a late full delivery (old export re-sent) and the nightly match's changed-record
## search (clean change log vs every row) at 100 k, ingest/clean/match stages only (needs
## data/bench/100000 from bench_pipeline.py); prints the table for BENCHMARKS.md
.PHONY: bench-late
bench-late: $(STAMP)
	$(BIN)/python benchmarks/bench_late_delivery.py --records 100000

## bench-versions: the nightly version step (stored state, new sightings only) vs a resolution over
## every raw sighting, night by night over a replay (NIGHTS, default 10 here); figures to BENCHMARKS.md
.PHONY: bench-versions
bench-versions: $(STAMP)
	$(BIN)/python benchmarks/bench_versions.py --records $(RECORDS) --nights $(or $(VERSION_NIGHTS),10)

## bench-dossier: seconds per dossier PDF, full font vs the batch font subset; to BENCHMARKS.md
.PHONY: bench-dossier
bench-dossier: $(STAMP) fonts
	$(BIN)/python benchmarks/bench_dossier.py --entities 40 --dossiers 30 --repeat 3

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

## console: the steward console on http://127.0.0.1:8765 over data/warehouse.duckdb (after make run)
console: $(STAMP)
	$(BIN)/customer-archive console --config archive.yml --warehouse data/warehouse.duckdb

## bench-console: console page answer times on ../shared/corpus/cn_20k (runs the pipeline once
## into data/bench_console; BENCH_ARGS=--reuse keeps it), appended to BENCHMARKS.md
BENCH_ARGS ?=
bench-console: $(STAMP)
	$(BIN)/python benchmarks/bench_console.py $(BENCH_ARGS)
