"""The Predict tab (tab.py), made of panels with one job each: the model list (models.py), the
run controls (run.py), the result and its counts (result.py), the exports (export.py) and
Explain (explain.py)."""

from svetlana.gui.tabs.predict.tab import PredictionTab

__all__ = ["PredictionTab"]
