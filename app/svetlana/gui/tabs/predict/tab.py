"""The Prediction tab: the panels of predict/ side by side, kept in step with the session.

Run controls (run.py: model, scope, Run/Cancel, progress), the Result box (result.py: counts,
confidence filter, corrections), the exports (export.py), Explain (explain.py); the charts per
class are a window of their own (dialogs/results_window.py). The long verbs are plan/run/commit
operations through gui/ops.run_op.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from svetlana.gui.dialogs.results_window import ResultsWindow
from svetlana.gui.jobs import Job, stop_jobs
from svetlana.gui.session import Session
from svetlana.gui.tabs.predict.explain import ExplainBox
from svetlana.gui.tabs.predict.export import ExportControls
from svetlana.gui.tabs.predict.result import ResultBox
from svetlana.gui.tabs.predict.run import RunPanel
from svetlana.gui.widgets.results_panel import ResultsPanel

log = logging.getLogger(__name__)

# widgets of the panels also reachable on the tab (tab.run_button is tab.run.run_button)
_RUN_WIDGETS = ("model", "scope_buttons", "folder", "folder_browse", "out_dir", "out_browse",
                "workers", "run_button", "cancel_button", "progress", "status")  # fmt: skip
_RESULT_WIDGETS = ("shown_model", "counts", "confidence", "confidence_label",
                   "corrections_label", "retrain_button", "results_button")  # fmt: skip


class PredictionTab(QWidget):
    """Classify objects with a trained model in the background and review the result.

    Signals for the main window: ``retrainRequested`` (connect it to
    ``TrainingTab.start_training`` and show the training tab), ``predictionFinished(model_id)``
    ("" when cancelled or failed; the worker thread is gone by then), ``exportFinished``
    (ExportDone, or None), ``explainFinished``. The class overlay itself is drawn by the image
    view from ``session.predictions`` and ``session.view_options["max_confidence"]``.
    """

    retrainRequested = Signal()
    predictionFinished = Signal(str)
    explainFinished = Signal()
    exportFinished = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.run = RunPanel(session)
        self.exports = ExportControls(session, self.run, self)
        self.result = ResultBox(session, self.run.model, self.exports.export_button)
        self.explain = ExplainBox(session, self.run.model)
        for names, panel in ((_RUN_WIDGETS, self.run), (_RESULT_WIDGETS, self.result)):
            for name in names:
                setattr(self, name, getattr(panel, name))
        self.export_button, self.export_menu = self.exports.export_button, self.exports.export_menu
        self.keep_button = self.exports.keep_button
        self.explain_button, self.explain_view = (
            self.explain.explain_button,
            self.explain.explain_view,
        )
        self._layout()
        # Charts per class in a window of their own (the side panel is too narrow to read them).
        self.results_panel = ResultsPanel(session)
        self.results_window = ResultsWindow(self.results_panel, self)
        self._connect()
        self._on_project_changed()

    def _layout(self) -> None:
        row = self.result.actions_row
        row.addWidget(self.exports.export_button)
        row.addWidget(self.exports.keep_button)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.run)
        lay.addWidget(self.result, 1)
        lay.addWidget(self.explain, 2)

    def _connect(self) -> None:
        s = self.session
        s.projectChanged.connect(self._on_project_changed)
        s.modelsChanged.connect(lambda: self.refresh_models(select_newest=True))
        s.predictionsChanged.connect(self.refresh_counts)
        s.currentImageChanged.connect(lambda _name: self.refresh_counts())
        s.labelsChanged.connect(lambda _keys: self._on_labels_changed())
        s.busyChanged.connect(lambda _b: self.update_buttons())
        s.selectionChanged.connect(lambda _sel: self.update_buttons())
        s.viewOptionsChanged.connect(self.result.sync_slider)
        self.run.model.currentIndexChanged.connect(lambda _i: self._on_model_chosen())
        self.run.scope_group.idToggled.connect(lambda _i, _on: self.update_buttons())
        self.run.started.connect(self.update_buttons)
        self.run.finished.connect(self._on_run_finished)
        self.run.folderPredicted.connect(self.refresh_counts)
        self.result.retrainRequested.connect(self.retrainRequested)
        self.result.results_button.clicked.connect(self.open_results)
        self.exports.finished.connect(self._on_export_finished)
        self.explain.finished.connect(self.explainFinished)
        self.explain.finished.connect(self.update_buttons)

    # ---- state ----------------------------------------------------------------------
    @property
    def job(self) -> Job | None:
        """The run or export shown in the progress bar."""
        return self.run.job

    def scope(self) -> str:
        return self.run.scope()

    def set_scope(self, scope: str) -> None:
        self.run.scope_buttons[scope].setChecked(True)

    def selected_model(self) -> str | None:
        return self.run.model.selected()

    def run_prediction(self) -> Job | None:
        """Predict the chosen scope with the chosen model; ``None`` if it cannot start."""
        return self.run.run_prediction()

    def _on_project_changed(self) -> None:
        self.run.model.forget()
        self.run.last_run = None
        self.refresh_models(select_newest=True)
        self.refresh_counts()

    def refresh_models(self, select_newest: bool = False) -> None:
        self.run.model.refresh(select_newest)
        self.result.refresh_corrections()
        self.result.refresh_shown_model()
        self.update_buttons()

    def refresh_counts(self) -> None:
        self.result.refresh_counts(self.run.last_run)
        self.update_buttons()

    def update_buttons(self) -> None:
        busy = self.session.busy or self.run.running()
        self.run.update_enabled(busy)
        self.exports.update_enabled(busy)
        self.explain.update_enabled(busy)

    def _on_run_finished(self, model_id: str) -> None:
        self.result.refresh_corrections()
        self.update_buttons()
        self.predictionFinished.emit(model_id)

    def _on_export_finished(self, done) -> None:
        self.update_buttons()
        self.exportFinished.emit(done)

    def _on_labels_changed(self) -> None:
        self.refresh_counts()
        self.result.refresh_corrections()

    def _on_model_chosen(self) -> None:
        """Nothing shown yet: show the chosen model's saved predictions of this image, when
        current (``results.saved_predictions``), as reopening a project does for the newest."""
        session, chosen = self.session, self.selected_model()
        image = session.current_image
        if session.project is not None and not session.predictions and chosen and image:
            from svetlana.core.usecases.results import saved_predictions

            got = saved_predictions(session.project, chosen, [image])
            if got:
                session.set_predictions(chosen, got)
        self.result.refresh_corrections()
        self.result.refresh_shown_model()

    def open_results(self) -> None:
        """The Results per class window (non-modal: the image stays usable beside it)."""
        self.results_window.show()
        self.results_window.raise_()
        self.results_window.activateWindow()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel running work and wait for its thread (call before the window closes the project)."""
        panel_stopped = self.results_panel.shutdown(timeout_ms)
        keep = self.exports.keep_dialog
        jobs = (self.run.job, self.explain.job, keep.job if keep is not None else None)
        return stop_jobs(*jobs, timeout_ms=timeout_ms) and panel_stopped
