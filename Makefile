# The two commands: `make dev` runs shopsync end to end locally, `make test` runs the tests.
.PHONY: dev test bootstrap lint bench clean

bootstrap:
	@scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/shopsync dev

test: bootstrap
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/ruff check worker tests bench sandboxes
	.venv/bin/mypy

bench: bootstrap
	.venv/bin/python -m bench

clean:
	rm -rf .shopsync
