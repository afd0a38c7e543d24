"""Benchmarks for shopsync: ``python -m bench`` (see docs/benchmarks.md)."""
