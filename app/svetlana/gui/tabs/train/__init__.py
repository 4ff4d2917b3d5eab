"""The Train tab: the run and its live curves (tab.py), the model list and card (models.py);
the settings form is gui/widgets/training_form.py."""

from svetlana.gui.tabs.train.tab import TrainingTab

__all__ = ["TrainingTab"]
