# vodorigin: every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?= configs/local.toml

.PHONY: run test bench fixtures lint setup setup-test fuzz fuzz-replay lock

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

## run: start the server on the committed fixtures (http://$(HOST):$(PORT))
run: setup
	$(PY) -m vodorigin serve --config $(CONFIG) --host $(HOST) --port $(PORT)

## test: lint, then the whole test suite (unit, property, real-tool checks)
test: setup-test
	$(PY) -m ruff check vodorigin tests bench
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

## bench: throughput and latency figures (generates its media under bench/media, not committed)
bench:
	@scripts/setup.sh --bench
	$(PY) -m bench.run
	$(PY) -m bench.load

## fuzz: mutate the fixtures against every protocol for FUZZ_SECONDS (make test runs 60 s of the
## fixed-seed sequence); new findings are minimized into tests/fuzz/crashers/
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= 0
fuzz: setup-test
	$(PY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED)

## fuzz-replay: exercise every committed crasher again (exit 1 while any still gives a finding)
fuzz-replay: setup-test
	$(PY) -m tests.fuzz.run --replay tests/fuzz/crashers

## fixtures: regenerate the committed test media (commands in fixtures/README.md)
fixtures: setup-test
	bash fixtures/make_fixtures.sh

## lint: ruff and mypy
lint: setup-test
	$(PY) -m ruff check vodorigin tests bench
	$(PY) -m mypy

## lock: pin every package again (after changing pyproject.toml): a fresh venv, then pip freeze
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip && .lock-venv/bin/python -m pip install -q ".[test]"
	{ head -3 constraints.txt; .lock-venv/bin/python -m pip freeze --exclude vodorigin; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv
