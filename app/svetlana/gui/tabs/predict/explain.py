"""The Predict tab's Explain box: Grad-CAM of the selected object (a network's; a forest is
explained by its measurements in the Train tab). The model is loaded, the image read and the
patch cut in the worker (gui/ops.run_op), never on the GUI thread."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QPushButton, QVBoxLayout

from svetlana.core.errors import InputError, ModelError
from svetlana.core.ml.explain import FOREST_NOT_EXPLAINED
from svetlana.core.ml.forest import is_forest
from svetlana.core.usecases import predict as predicting
from svetlana.gui.jobs import Job, show_status
from svetlana.gui.ops import run_op
from svetlana.gui.widgets.common import ExplainView

PROMPT = "Select an object on the image and press Explain."  # ExplainView's first caption

EXPLAIN_TIP = (
    "Shows which part of the object's surroundings made the model choose its class\n"
    "(Grad-CAM: bright = important)."
)


class ExplainBox(QGroupBox):
    """``finished`` once an explanation's worker is gone (shown or failed)."""

    finished = Signal()

    def __init__(self, session, model, parent=None):
        super().__init__("Explain", parent)
        self.session = session
        self.model = model  # the run panel's ModelChooser
        self.job: Job | None = None
        lay = QVBoxLayout(self)
        self.explain_button = QPushButton("Explain selected object")
        self.explain_button.setToolTip(EXPLAIN_TIP)
        self.explain_button.clicked.connect(self.explain_selected)
        self.explain_view = ExplainView()
        lay.addWidget(self.explain_button)
        lay.addWidget(self.explain_view)

    def _explained(self) -> str | None:
        return self.session.prediction_model or self.model.selected()

    def update_enabled(self, busy: bool) -> None:
        explained = self._explained()
        has_project = self.session.project is not None
        forest = has_project and explained is not None and self.model.is_forest(explained)
        self.explain_button.setEnabled(
            has_project
            and not busy
            and self.model.count() > 0
            and bool(self.session.selection)
            and not forest
        )
        self.explain_view.graphics.setHidden(forest)  # no heatmap to show: no empty box
        caption = self.explain_view.caption
        if forest and caption.text() == PROMPT:  # said at once, not only once clicked
            caption.setText(FOREST_NOT_EXPLAINED)
        elif not forest and caption.text() == FOREST_NOT_EXPLAINED:
            caption.setText(PROMPT)
        self.explain_button.setToolTip(
            f"Grad-CAM explains a CNN; {explained} is a forest on measurements: the\n"
            "measurements that decide are listed with it in the Train tab."
            if forest
            else EXPLAIN_TIP
        )

    def explain_selected(self) -> Job | None:
        """Grad-CAM of the first selected object of the current image."""
        name = self.session.current_image
        if self.session.project is None or name is None or not self.session.selection:
            show_status(self, "select an object on the image first")
            return None
        obj = int(self.session.selection[0])
        model_id = self._explained()
        if model_id is not None and self.model.is_forest(model_id):
            # Said where the heatmap would be, not in an error dialog: nothing went wrong.
            self.explain_view.caption.setText(FOREST_NOT_EXPLAINED)
            show_status(self, "a forest is not explained with Grad-CAM")
            return None

        def plan(project):
            if model_id is None:
                raise InputError(
                    "the project has no trained model yet: train one in the Training tab"
                )
            card = project.models.card(model_id)
            if is_forest(card):
                raise ModelError(FOREST_NOT_EXPLAINED)
            return {"card": card, "model": self.model.loaded(model_id)}

        def run(p, view, _progress, _cancel):
            from svetlana.core.ml.explain import gradcam

            model = p["model"] or predicting.load_model(view, model_id)[0]
            im = view.load(name)
            if not bool(im.table.contains(np.asarray([obj]))[0]):
                raise InputError(f"image {name!r} has no object {obj}")
            patch = im.object_patch(obj, int(p["card"]["patch_size"]))
            return model, patch, gradcam(model, patch)

        def commit(p, result) -> None:
            model, patch, heat = result
            self.model.keep_loaded(model_id, model)
            self.explain_view.show_result(patch, heat, self._caption(p, obj, model_id, name))

        job = run_op(self, self.session, "explain", plan, run, commit)
        if job is None:
            return None
        self.job = job
        job.finished.connect(self.finished)
        return job

    def _caption(self, p, obj: int, model_id: str, name: str) -> str:
        class_names = tuple(p["card"]["classes"])
        shown = self.session.prediction_model == model_id
        pred = self.session.predictions.get(name) if shown else None
        caption = f"Object {obj} ({model_id})"
        if pred is not None:
            row = int(pred.table.rows(np.asarray([obj]))[0])
            k = int(pred.class_index[row]) - 1
            caption += (
                f": predicted {class_names[k]} ({float(pred.confidence[row]):.0%}). "
                "Bright = what decided it."
            )
        return caption
