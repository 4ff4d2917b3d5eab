"""The project folder bundle and the provenance of what leaves it."""
