"""The Predict tab's Result box: whose predictions are shown (and whether they are stale), the
objects per class (your labels win, exactly what Export writes), the confidence filter, the
corrections since the model with Retrain, and the row of result actions."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from svetlana.core.wording import plural
from svetlana.gui.widgets.tables import CountsTable

STALE_STYLE = "QLabel { background: #fff3cd; color: #664d03; }"


class ResultBox(QGroupBox):
    """``retrainRequested`` when Retrain is clicked; ``actions_row`` holds the export buttons."""

    retrainRequested = Signal()

    def __init__(self, session, model, export_button: QPushButton, parent=None):
        super().__init__("Result", parent)
        self.session = session
        self.model = model  # the run panel's ModelChooser
        self.export_button = export_button
        res = QVBoxLayout(self)
        self.shown_model = QLabel()
        self.shown_model.setWordWrap(True)
        self.shown_model.setToolTip(
            "The model whose predictions are on the image, in the counts and in Export.\n"
            "Objects you labelled or corrected count (and export) as your class."
        )
        res.addWidget(self.shown_model)
        self.counts = CountsTable()
        self.counts.setToolTip(
            "Objects per class: your label where you gave one, else the model's prediction\n"
            "(exactly what Export writes)."
        )
        res.addWidget(self.counts)
        self.confidence_label = QLabel()
        self.confidence_label.setWordWrap(True)
        self.confidence = QSlider(Qt.Orientation.Horizontal)
        self.confidence.setRange(0, 100)
        self.confidence.setValue(100)
        self.confidence.setToolTip(
            "Show only the predictions the model is least sure of (confidence at or below this value):\n"
            "check them first, and correct wrong ones by clicking the object and pressing its class key."
        )
        self.confidence.valueChanged.connect(
            lambda v: session.set_view_option("max_confidence", v / 100.0)
        )
        res.addWidget(self.confidence_label)
        res.addWidget(self.confidence)
        corr = QHBoxLayout()
        self.corrections_label = QLabel()
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip(
            "Train a new model with your corrections (the Training tab's settings)."
        )
        self.retrain_button.clicked.connect(self.retrainRequested)
        corr.addWidget(self.corrections_label, 1)
        corr.addWidget(self.retrain_button)
        res.addLayout(corr)
        self.actions_row = QHBoxLayout()
        res.addLayout(self.actions_row)
        self.results_button = QPushButton("Results per class…")
        self.results_button.setToolTip(
            "Charts of the objects per class per image and of a measurement per class,\n"
            "in a window of their own; each saves as PNG or SVG with its data as CSV."
        )
        res.addWidget(self.results_button)

    def final_classes(self) -> dict:
        """image -> FinalClasses of the shown predictions (what the overlay and Export show)."""
        from svetlana.core.annotations.final_class import project_final_classes

        if self.session.project is None:
            return {}
        return project_final_classes(self.session.project, self.session.predictions)

    def refresh_counts(self, last_run=None) -> None:
        """The counts of the shown predictions, or of ``last_run`` (a folder) when none."""
        from svetlana.core.wording import plural

        finals = self.final_classes() if self.session.predictions else {}
        columns: dict[str, dict[str, int]] = {}
        names: tuple[str, ...] = ()
        if finals:
            names = tuple(next(iter(finals.values())).class_names)
            current = finals.get(self.session.current_image)
            if current is not None:
                columns["this image"] = current.counts()
            total = dict.fromkeys(names, 0)
            for f in finals.values():
                for k, v in f.counts().items():
                    total[k] = total.get(k, 0) + v
            columns[f"{plural(len(finals), 'image')} predicted"] = total
        elif last_run is not None:
            names = tuple(last_run.class_names)
            columns["folder"] = last_run.total_counts
        colours: list[str] = []
        if self.session.project is not None and names:
            store = self.session.project.annotations
            colours = [store.class_info(n).colour if n in store.class_names else "" for n in names]
        self.counts.set_counts(names, colours, columns)
        self.update_confidence_label()
        self.refresh_shown_model()

    def predictions_stale(self) -> bool:
        """True when the shown predictions are not from the model chosen in the Model box."""
        shown = self.session.prediction_model
        return (
            bool(self.session.predictions) and shown is not None and shown != self.model.selected()
        )

    def refresh_shown_model(self) -> None:
        shown = self.session.prediction_model
        if not self.session.predictions or shown is None:
            self.shown_model.setText("")
            self.export_button.setText("Export")
            self.shown_model.setVisible(False)
            return
        self.shown_model.setVisible(True)
        if self.predictions_stale():
            chosen = self.model.selected()
            self.shown_model.setText(
                f"<b>⚠ Stale:</b> shown are the predictions of <b>{shown}</b>; the chosen model is "
                f"<b>{chosen}</b>. Press Run to predict with {chosen}."
            )
            self.shown_model.setStyleSheet(STALE_STYLE)
            self.export_button.setText(f"Export ({shown}, stale)")
            return
        from svetlana.core.usecases.classes import class_mismatch

        text = f"Predictions of <b>{shown}</b>; your labels and corrections override them."
        first = next(iter(self.session.predictions.values()))
        note = class_mismatch(self.session.project, first.class_names)
        if note:
            text += f"<br>Note: {note}."
        self.shown_model.setText(text)
        self.shown_model.setStyleSheet("")
        self.export_button.setText(f"Export ({shown})")

    def sync_slider(self) -> None:
        value = int(round(float(self.session.view_options.get("max_confidence", 1.0)) * 100))
        if self.confidence.value() != value:
            with QSignalBlocker(self.confidence):
                self.confidence.setValue(value)
        self.update_confidence_label()

    def update_confidence_label(self) -> None:
        x = self.confidence.value() / 100.0
        text = f"Show predictions with confidence ≤ {x:.0%}"
        preds = self.session.predictions
        pred = preds.get(self.session.current_image) if preds else None
        if pred is not None:
            shown = int((pred.confidence <= x + 1e-9).sum())
            text += f" ({shown} of {plural(len(pred.ids), 'object')} on this image)"
        self.confidence_label.setText(text)

    def refresh_corrections(self) -> None:
        # Since the chosen model (after a retrain: the new one, which learnt the earlier ones).
        model_id = self.model.selected() or self.session.prediction_model
        n = self.session.corrections_since(model_id) if model_id else 0
        self.corrections_label.setText(f"{plural(n, 'correction')} since {model_id}")
        self.corrections_label.setVisible(n > 0)
        self.retrain_button.setVisible(n > 0)
