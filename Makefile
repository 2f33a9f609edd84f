# The two commands: `make demo` (the portal on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint browser clean bench bench-pages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Debian's chromium (sudo apt-get install chromium) for the browser tests"; exit 1; fi; }

demo: $(STAMP)
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate -v0 && DJANGO_DEBUG=1 $(BIN)/python manage.py api_demo_seed
	DJANGO_DEBUG=1 $(BIN)/python manage.py demo

test: $(STAMP) browser
	DJANGO_DEBUG=1 CELERY_FS_DIR=var/test-celery $(BIN)/pytest $(PYTEST_ARGS)

# ruff, then the import contracts in pyproject.toml (the layering of the apps; the emulator imports none of them).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/sweep.py

# Every staff page at 10,000 tenants / 1M token tests / 1M audit events on PostgreSQL (bench/README.md; ~10 minutes).
bench-pages: $(STAMP)
	$(BIN)/python bench/pages.py $(BENCH_ARGS)

clean:
	rm -rf var/ $(VENV)
