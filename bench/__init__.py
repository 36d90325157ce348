"""Measurements of the running system: `make bench` and `make soak` (bench/run.py)."""
