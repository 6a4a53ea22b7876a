"""Benchmarks: one module per measurement, each runnable as ``python -m bench.NAME``
and all in order as ``python -m bench``. Results are recorded in docs/benchmarks.md."""
