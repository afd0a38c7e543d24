# The two commands: `make dev` runs shopsync end to end locally, `make test` runs the tests.
.PHONY: dev test bootstrap lint lint-only bench browser-check clean

bootstrap:
	@scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/shopsync dev

# lint first: ruff and mypy --strict take seconds, so a type or style error fails fast
test: bootstrap lint-only
	.venv/bin/python -m pytest -q

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
