# The two commands of the README: `make run` serves with defaults, `make test` proves everything.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := all
.PHONY: all install run test lint format typecheck proto proto-check docs unit test-integration brokers brokers-stop clean

install:  ## venv with the package and its dev tools (idempotent)
	@scripts/bootstrap.sh $(VENV)

run: install  ## serve on :9090 (gRPC) and :8080 (metrics) with defaults
	$(BIN)/keda-queue-scaler serve

brokers:  ## install (if missing) and start the brokers the tests use, on loopback
	@scripts/brokers.sh start

brokers-stop:
	@scripts/brokers.sh stop

test: install brokers  ## everything CI runs: lint, types, proto drift, every test against real brokers
	@scripts/test.sh

all: test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

proto: install  ## regenerate scaler/proto from protos/externalscaler.proto
	@scripts/proto.sh .

proto-check: install  ## fail if the committed generated code differs from a fresh generation
	@scripts/proto.sh --check

docs: install  ## regenerate the reference tables of docs/ from the code (parameters, settings)
	$(PY) -m scaler.tools.reference

unit: install
	$(BIN)/pytest -m "not integration"

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
