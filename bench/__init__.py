"""Measurements of the running system: `make bench` (bench/run.py) and bench/latency_gateway.py."""
