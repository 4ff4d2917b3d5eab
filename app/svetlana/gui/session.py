"""The open project as the GUI sees it: one QObject with signals that every view subscribes to."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from svetlana.core.annotations.commands import Command, LabelObjects, label_source
from svetlana.core.project.bundle import Project
from svetlana.core.project.images import LoadedImage

log = logging.getLogger(__name__)


class _CoreCommand(QUndoCommand):
    """A thin QUndoCommand over a core command (the core does the work, Qt keeps the stack)."""

    def __init__(self, session: Session, cmd: Command):
        super().__init__(cmd.text)
        self._session = session
        self._cmd = cmd
        self._done_once = False  # QUndoStack.push runs redo() once: that is not a "Redo"

    def redo(self) -> None:
        self._cmd.do(self._session.project.annotations)
        if self._done_once:
            self._revisit()
        self._done_once = True

    def undo(self) -> None:
        self._cmd.undo(self._session.project.annotations)
        self._revisit()

    def _revisit(self) -> None:
        if isinstance(self._cmd, LabelObjects):
            self._session.labelsRevisited.emit(self._cmd.image, tuple(self._cmd.objects))


class Session(QObject):
    """Holds the open project, the current image and selection, predictions, and the undo stack.

    Views never change the project directly: they call the methods here (which push undoable
    core commands) and repaint on the signals. (21 methods: the one place every change of the
    project, the image shown and the selection goes through, so that every view agrees.)
    """

    projectChanged = Signal()  # a project was opened or closed
    imagesChanged = Signal()  # images added
    currentImageChanged = Signal(str)
    labelsChanged = Signal(object)  # set of (image, object) keys, or None for "everything"
    classesChanged = Signal()
    selectionChanged = Signal(object)  # tuple of object ids of the current image
    # The current object(s) were labelled by a class key: (who showed them, ids, class or None).
    # Only that view moves on (the Annotate tab to its next object, the Review list to its next
    # row, the gallery to its next thumbnail).
    currentLabelled = Signal(str, object, object)
    modelsChanged = Signal()
    predictionsChanged = Signal()  # self.predictions changed
    busyChanged = Signal(bool)  # a background job started/finished
    viewOptionsChanged = Signal()  # self.view_options changed
    labelsRevisited = Signal(str, object)  # image, object ids whose label Undo/Redo changed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.undo_stack = QUndoStack(self)
        self.current_image: str | None = None
        # THE current object(s): what a class key labels, highlighted in every view.
        self.selection: tuple[int, ...] = ()
        self.selection_source = ""  # which view chose them ("annotate", "review", "gallery")
        # image name -> ImagePrediction of the model in self.prediction_model
        self.predictions: dict = {}
        self.prediction_model: str | None = None
        self.busy = False
        # What the image view draws; tabs change these through set_view_option.
        self.view_options: dict = {
            "outlines": True,
            "labels": True,  # annotated objects filled with their class colour
            "predictions": True,  # predicted classes (when self.predictions has the image)
            "max_confidence": 1.0,  # show predictions only for objects at or below this confidence
            "hidden_ids": frozenset(),  # e.g. objects removed by "keep these classes" preview
        }

    # ---- project ------------------------------------------------------------------
    def open_project(self, path: str | Path) -> Project:
        project = Project.open(Path(path))
        self.set_project(project)
        return project

    def set_project(self, project: Project | None) -> None:
        self.close_project()
        self.project = project
        if project is not None:
            project.annotations.listeners.append(self._on_store_changed)
            project.annotations.defer_fsync()  # a key never waits for a slow disk's fsync
            self.current_image = project.image_names[0] if project.image_names else None
        self._restore_saved_predictions(self.current_image)
        self.projectChanged.emit()
        if self.current_image:
            self.currentImageChanged.emit(self.current_image)

    def close_project(self) -> None:
        if self.project is not None:
            try:
                self.project.close()
            except Exception:  # closing must never lose the window; the journal keeps labels
                log.exception("error while closing the project")
        self.project = None
        self.current_image = None
        self.selection = ()
        self.predictions = {}
        self.prediction_model = None
        self.undo_stack.clear()

    def _on_store_changed(self, keys) -> None:
        if keys is None:
            self.classesChanged.emit()
            self.labelsChanged.emit(None)
        else:
            self.labelsChanged.emit(keys)

    # ---- images ---------------------------------------------------------------------
    def loaded(self, name: str | None = None) -> LoadedImage | None:
        name = name or self.current_image
        if self.project is None or name is None:
            return None
        return self.project.load(name)

    def set_current_image(self, name: str) -> None:
        if self.project is None or name == self.current_image:
            return
        self.project.image(name)
        self.current_image = name
        self.selection = ()
        self.selection_source = ""
        if self._restore_saved_predictions(name):
            self.predictionsChanged.emit()
        self.currentImageChanged.emit(name)
        if not self.selection:  # a view may have chosen the new image's first object already
            self.selectionChanged.emit(())

    def step_image(self, step: int) -> None:
        if self.project is None or not self.project.image_names:
            return
        names = self.project.image_names
        i = names.index(self.current_image) if self.current_image in names else 0
        self.set_current_image(names[(i + step) % len(names)])

    def _restore_saved_predictions(self, name: str | None) -> bool:
        """Show the bundle's saved predictions of the newest model for this image, if current.

        Reopening a project shows its last results (and Uncertain mode works) without
        predicting again; predictions older than their model are ignored.
        """
        if self.project is None or name is None or name in self.predictions:
            return False
        model_id = self.prediction_model or self.project.models.latest()
        if model_id is None:
            return False
        from svetlana.core.errors import SvetlanaError
        from svetlana.core.usecases.export_masks import saved_predictions

        try:
            got = saved_predictions(self.project, model_id, [name])
        except SvetlanaError as exc:
            log.info("saved predictions not shown: %s", exc)
            return False
        if not got:
            return False
        self.prediction_model = model_id
        self.predictions.update(got)
        return True

    # ---- selection and labels --------------------------------------------------------
    def select(self, ids, source: str = "annotate") -> None:
        """Make ``ids`` the current object(s), chosen by the view ``source``."""
        self.selection = tuple(int(i) for i in ids)
        self.selection_source = source
        self.selectionChanged.emit(self.selection)

    def label_current(self, class_name: str | None, skip_labelled: bool = False) -> tuple:
        """THE labelling of a class key: the current object(s), and only them, in one undoable
        step; ``skip_labelled`` leaves objects that already have a label as they are.

        Returns the ids labelled; ``currentLabelled`` tells the view that chose them.
        """
        if self.project is None or self.current_image is None:
            return ()
        ids = self.selection
        if skip_labelled:
            done = self.project.annotations.for_image(self.current_image)
            ids = tuple(o for o in ids if o not in done)
        if not ids:
            return ()
        self.label(ids, class_name)
        self.currentLabelled.emit(self.selection_source, ids, class_name)
        return ids

    def push(self, cmd: Command) -> None:
        cmd.check(self.project.annotations)  # raises here: QUndoStack would swallow it
        self.undo_stack.push(_CoreCommand(self, cmd))

    def label(self, ids, class_name: str | None) -> None:
        """Label (or clear, with None) objects of the current image in one undoable step.

        Where a prediction disagrees with the new label, the label is recorded as a correction.
        """
        if self.project is None or self.current_image is None:
            return
        ids = [int(i) for i in ids]
        if not ids:
            return
        pred = self.predictions.get(self.current_image)
        predicted = ()
        if class_name is not None and pred is not None:
            rows = pred.table.rows(np.asarray(ids))
            predicted = [pred.class_names[k - 1] for k in pred.class_index[rows]]
        source = label_source(class_name, predicted)
        self.push(LabelObjects(self.current_image, ids, class_name, source))

    def corrections_since(self, model_id: str | None) -> int:
        """Corrections made after ``model_id``'s training began (see usecases.summary.corrections_since)."""
        if self.project is None:
            return 0
        from svetlana.core.usecases.summary import corrections_since

        return corrections_since(self.project, model_id)

    def remove_image(self, name: str) -> None:
        """Remove an image and its labels (the user confirmed; usecases.images). Undo history
        is cleared: its steps may refer to the removed image."""
        from svetlana.core.usecases.images import remove_image

        remove_image(self.project, name, confirmed=True)
        self.undo_stack.clear()
        self.predictions.pop(name, None)
        self.imagesChanged.emit()
        self.labelsChanged.emit(None)
        if name == self.current_image:
            names = self.project.image_names
            if names:
                self.current_image = None
                self.set_current_image(names[0])
            else:
                self.current_image = None
                self.selection = ()
                self.projectChanged.emit()

    def set_spacing(self, name: str, spacing) -> None:
        from svetlana.core.usecases.images import set_spacing

        set_spacing(self.project, name, spacing)
        self.imagesChanged.emit()
        if name == self.current_image:
            self.currentImageChanged.emit(name)

    # ---- images and models (commits of work done in a worker) ------------------------
    def add_prepared(self, project: Project, prepared, names: list[str]) -> None:
        """Add images read in a worker (``prepare_images``) to ``project`` if it is still the
        open one, appending their names to ``names`` (an error is raised after the signal)."""
        if project is not self.project:
            return  # the project was closed meanwhile: nothing to add to
        try:
            for item in prepared:
                names.append(project.add_prepared(item).name)
        finally:
            if names:
                self.imagesChanged.emit()

    def commit_training(self, project: Project, job, result):
        """Write and register a model trained in a worker (``usecases.train.finish_training``)."""
        from svetlana.core.usecases.train import finish_training

        trained = finish_training(project, job, result)
        self.modelsChanged.emit()
        return trained

    # ---- predictions ----------------------------------------------------------------
    def set_predictions(self, model_id: str | None, predictions: dict) -> None:
        self.prediction_model = model_id
        self.predictions = dict(predictions)
        self.predictionsChanged.emit()

    def set_view_option(self, key: str, value) -> None:
        self.view_options[key] = value
        self.viewOptionsChanged.emit()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.busyChanged.emit(busy)
