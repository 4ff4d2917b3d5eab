"""One module per user verb, shared by the CLI and the GUI."""
