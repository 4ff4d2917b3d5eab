"""Classifiers: networks, forests, training, inference, model choice, explanations."""
