"""Views and panels the tabs are made of (image view, charts, live preview, review list)."""
