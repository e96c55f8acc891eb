# vodorigin: every target installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?= configs/local.toml

.PHONY: run test bench fixtures lint setup setup-test

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
bench: setup-test
	$(PY) -m bench.run

## fixtures: regenerate the committed test media (commands in fixtures/README.md)
fixtures: setup-test
	bash fixtures/make_fixtures.sh

## lint: ruff and mypy
lint: setup-test
	$(PY) -m ruff check vodorigin tests bench
	$(PY) -m mypy
