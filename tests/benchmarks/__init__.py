"""Benchmarks against the SVETLANA paper's experiments (not part of the default test run)."""
