"""The three tabs of the main window: Annotate, Train, Predict."""
