"""Performance benchmarks for svqm: `python -m benchmarks [B1 B2 ...]` (or `make bench`).

Each benchmark measures the engine against a bare SQLAlchemy/Python baseline timed in the same run,
reports the ratio against its target, and merges its result into `var/bench/results.json`.
"""
