"""The user's labels (store, journal, commands) and the class each object leaves with."""
