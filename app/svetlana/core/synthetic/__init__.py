"""Generated scenes with known classes (demo, tests, benchmarks)."""
