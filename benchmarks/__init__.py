"""Benchmarks of the harness: `python -m benchmarks` writes docs/benchmarks.md (see benchmarks/runner.py)."""
