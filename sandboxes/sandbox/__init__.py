"""Local stand-ins for the commerce platforms shopsync talks to (tests, benchmarks, ``make dev``)."""

__all__: list[str] = []
