"""Benchmarks: `python benchmarks/run.py [NAME ...]` (see RESULTS.md)."""
