# The two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv
PY := .venv/bin/python

.PHONY: install kafka-jars lint format types test test-fast run bench clean

install: .venv/.synced kafka-jars

.venv/.synced: uv.lock pyproject.toml
	$(UV) sync --frozen --python python3.11
	@touch $@

kafka-jars: .venv/.synced
	$(PY) -m devstack.kafka fetch

format: .venv/.synced
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lint: .venv/.synced
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .

types: .venv/.synced
	.venv/bin/mypy

# Every step runs even when an earlier one fails, so one run shows every problem; the
# target fails if any step did.
test: install
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory types || status=1; \
	.venv/bin/pytest || status=1; \
	exit $$status

run: install
	$(PY) -m devstack.run

bench: install
	$(PY) -m devstack.bench

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
