"""Benchmarks (bench/benchmark.py): the reference-style data path against this project's path."""
