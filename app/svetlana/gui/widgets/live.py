"""Live predictions while labelling: the fast forest refitted in the background after each label."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QGroupBox, QLabel, QVBoxLayout, QWidget

from svetlana.core.annotations.label_table import LabelTable
from svetlana.gui.jobs import Job, run_job, stop_jobs

log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
SUGGEST_BATCH = 20  # suggestions computed per refit (the Suggest mode's queue)
LIVE_OPTION = "live"  # the view option the image view draws (a LivePreview or None)


@dataclass(frozen=True, eq=False)
class LivePreview:
    """What the image view draws: the predicted class of every object of one image."""

    image: str
    ids: np.ndarray
    class_names: tuple[str, ...]
    predicted: np.ndarray  # index into class_names per id


@dataclass(frozen=True, eq=False)
class LiveResult:
    """One refit: the table it was fitted on (current image) and the fast model (None with
    fewer than two classes labelled)."""

    generation: int
    image: str
    table: LabelTable
    fast: object  # core.fast_model.FastModel | None
    suggested: np.ndarray  # object ids to label next (core.suggest), most useful first
    # A big image (core/usecases/live_preview.py): the objects in view, the labelled ones and a
    # sample were measured; the counts per class are estimated from the sample.
    estimated_counts: np.ndarray | None = None
    sample_size: int = 0


class LivePredictions(QObject):
    """Refits after label changes, never on the GUI thread, at most one at a time: labels that
    arrive while a refit waits (DEBOUNCE_MS) or runs are coalesced into it or into one more refit
    after it, so the preview keeps up with fast labelling (a refit's result is shown even when
    newer labels came meanwhile; the next refit has them)."""

    updated = Signal()  # self.result changed (or was cleared)
    started = Signal(bool)  # a refit started; True when this image is measured first

    def __init__(self, session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.enabled = True
        self.result: LiveResult | None = None
        self._measurements: dict[str, object] = {}
        self._stores: dict[str, object] = {}  # big images: live_preview.PreviewStore per image
        # The visible region ((y0, y1), (x0, x1)) in image pixels, given by the view (or None).
        self.region = None
        self._generation = 0
        self._job: Job | None = None
        self._again = False  # labels changed while a refit ran: one more after it
        self._again_ms = DEBOUNCE_MS
        self._epoch = 0  # results of an earlier epoch (project, switched off, stopped) dropped
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start)
        session.projectChanged.connect(self._on_project)
        session.currentImageChanged.connect(lambda _n: self.schedule(0))
        session.labelsChanged.connect(lambda _k: self.schedule())
        session.classesChanged.connect(lambda: self.schedule())

    # ---- control ------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        if on:
            self.schedule(0)
        else:
            self._timer.stop()
            self._again = False
            self._epoch += 1  # a running refit's result is dropped
            self._set(None)

    def schedule(self, delay_ms: int | None = None) -> None:
        """Refit within ``delay_ms`` (the debounce by default) with the labels as they are then.

        A refit already waiting is not put off by a newer call (only brought forward), and one
        running is followed by one more: fast labelling never starves the preview.
        """
        if not self.enabled or self.session.project is None or not self.session.current_image:
            return
        self._generation += 1
        delay = DEBOUNCE_MS if delay_ms is None else delay_ms
        if self.running:
            self._again_ms = min(self._again_ms, delay) if self._again else delay
            self._again = True
            return
        if self._timer.isActive() and self._timer.remainingTime() <= delay:
            return  # due anyway: it reads the newest labels when it starts
        self._timer.start(delay)

    @property
    def running(self) -> bool:
        return self._job is not None and self._job.running

    def stop(self) -> bool:
        """Cancel a pending or running refit and wait for it; True when none is left."""
        self._timer.stop()
        self._again = False
        self._epoch += 1
        return stop_jobs(self._job)

    # ---- work ---------------------------------------------------------------------------
    def view_moved(self) -> None:
        """The view was panned or zoomed: a big image's preview follows it (debounced)."""
        s = self.session
        if s.project is None or not s.current_image or s.current_image not in self._stores:
            return
        self.schedule()

    def _on_project(self) -> None:
        self._measurements = {}
        self._stores = {}
        self._epoch += 1
        self._set(None)
        self.schedule(0)

    def _snapshot(self):
        s = self.session
        name = s.current_image
        classes = tuple(s.project.annotations.class_names)
        index = {c: i for i, c in enumerate(classes)}
        labelled = {
            int(o): index[lab.class_name]
            for o, lab in s.project.annotations.for_image(name).items()
            if lab.class_name in index
        }
        return name, classes, labelled

    def _start(self) -> None:
        s = self.session
        if not self.enabled or s.project is None or not s.current_image:
            return
        if self.running:
            self._again, self._again_ms = True, 0  # refit once more when this one ends
            return
        from svetlana.core.project.bundle import Project

        project: Project = s.project
        generation, epoch = self._generation, self._epoch
        name, classes, labelled = self._snapshot()
        cached = self._measurements.get(name)
        seed = project.sampling_seed
        last = self.result
        previous = last.fast if last is not None and last.image == name else None
        source = None
        big = None
        if cached is None:  # what the worker measures: a snapshot, never the live project
            from svetlana.core.objects.measurement_cache import measurement_cache
            from svetlana.core.usecases.live_preview import PreviewStore, bounded

            loaded = project.load(name)
            if bounded(len(loaded.table.ids)):  # measure the view, never the whole slide
                store = self._stores.setdefault(name, PreviewStore())
                region = self.region() if self.region is not None else None
                big = (loaded.image, loaded.labels, loaded.table, region, store, loaded.spacing)
            else:
                source = (measurement_cache(project, name), loaded.image, loaded.labels)

        def work(progress, cancel):
            from svetlana.core.ml.fast_model import LIVE_TREES, fit_fast
            from svetlana.core.usecases.suggest import suggest

            sample = None
            if cached is not None:
                m = cached
            elif big is not None:
                from svetlana.core.usecases.live_preview import preview_measurements

                image, mask, objects, region, store, spacing = big
                keys = np.fromiter(labelled.keys(), np.int64, len(labelled))
                m, sample = preview_measurements(
                    image, mask, objects, region, keys, store, seed, spacing, cancel
                )
            else:
                cache, image, mask = source
                m = cache.measure(image, mask, cancel=cancel)
            ids = np.asarray(m.ids, np.int64)
            labels = np.full(len(ids), -1, np.int64)
            if labelled:
                keys = np.fromiter(labelled.keys(), np.int64, len(labelled))
                pos = np.searchsorted(ids, keys)
                pos = np.clip(pos, 0, max(len(ids) - 1, 0))
                ok = len(ids) > 0
                hit = (ids[pos] == keys) if ok else np.zeros(0, bool)
                labels[pos[hit]] = np.fromiter(labelled.values(), np.int64, len(labelled))[hit]
            table = LabelTable(
                (name,), np.zeros(len(ids), np.int64), ids, tuple(m.names),
                np.asarray(m.values, np.float32), labels, classes,
            )  # fmt: skip
            fast = fit_fast(
                table, seed=seed % (2**31), n_trees=LIVE_TREES, cancel=cancel, threads=1,
                previous=previous,
            )  # fmt: skip
            rows = suggest(table, SUGGEST_BATCH, seed=seed, fast=fast).rows
            if sample is None:
                return m, LiveResult(generation, name, table, fast, table.ids[rows])
            estimated = None
            in_sample = np.isin(ids, sample)
            if fast is not None and in_sample.any():  # the sample's shares, over every object
                share = np.bincount(fast.predicted[in_sample], minlength=len(classes))
                estimated = share / in_sample.sum() * len(big[2].ids)
            result = LiveResult(generation, name, table, fast, table.ids[rows], estimated,
                                int(in_sample.sum()))  # fmt: skip
            return None, result

        # No parent: a window torn down mid-refit must not destroy the running thread (the job
        # keeps itself alive until it ends; its results then go nowhere).
        self._job = run_job(
            None, work, on_success=self._guard(lambda out: self._on_done(out, epoch)),
            on_failure=self._guard(self._on_failed), name="live-refit",
        )  # fmt: skip
        self._job.finished.connect(self._guard(self._on_finished))
        self.started.emit(cached is None and (big is None or big[4].values is None))

    def _guard(self, slot):
        def call(*args):
            try:
                slot(*args)
            except RuntimeError:  # this object (its window) was deleted meanwhile
                log.debug("live refit result dropped: its window is gone")

        return call

    def _on_done(self, out, epoch: int) -> None:
        m, result = out
        if epoch != self._epoch or not self.enabled:
            log.debug("live refit dropped (another project, or switched off)")
            return
        self._measurements[result.image] = m
        if result.image != self.session.current_image:
            return  # another image is shown: its refit is already asked for
        if result.generation != self._generation:  # shown now; the next refit has the rest
            log.debug("labels changed while fitting: one more refit follows")
        self._set(result)

    def _on_failed(self, exc: BaseException) -> None:
        log.warning("live predictions stopped: %s", exc)
        from svetlana.gui.jobs import show_status

        parent = self.parent()
        show_status(parent if hasattr(parent, "window") else None, f"live predictions: {exc}")

    def _on_finished(self) -> None:
        if self._again and self.enabled:
            self._again = False
            # Labels changed while fitting: one more refit, after the debounce (not at once:
            # back-to-back refits during fast labelling would only slow the keys down), which
            # newer labels do not put off.
            if self.session.project is not None and self.session.current_image:
                self._timer.start(self._again_ms)

    def _set(self, result: LiveResult | None) -> None:
        self.result = result
        preview = None
        if result is not None and result.fast is not None:
            preview = LivePreview(
                result.image, result.table.ids, result.table.class_names, result.fast.predicted
            )
        if self.session.view_options.get(LIVE_OPTION) is not None or preview is not None:
            self.session.set_view_option(LIVE_OPTION, preview)
        self.updated.emit()


class LiveBox(QGroupBox):
    """The toggle, the count per predicted class and the accuracy estimate."""

    def __init__(self, live: LivePredictions, parent: QWidget | None = None):
        super().__init__("Live predictions", parent)
        self.live = live
        self.toggle = QCheckBox("Show predictions while labelling")
        self.toggle.setChecked(live.enabled)
        self.toggle.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.toggle.setToolTip(
            "After each label a quick forest is refitted on your labels (in the background) and\n"
            "every object is tinted with its predicted class. A preview only: Train still makes\n"
            "the model."
        )
        self.toggle.toggled.connect(live.set_enabled)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #444;")
        lay = QVBoxLayout(self)
        lay.addWidget(self.toggle)
        lay.addWidget(self.summary)
        live.updated.connect(self.show_result)
        live.started.connect(self._on_started)
        self.show_result()

    def _on_started(self, measuring: bool) -> None:
        if self.live.result is None and measuring:
            self.summary.setText("Measuring the objects of this image (once; cached)…")

    def show_result(self) -> None:
        from svetlana.core.wording import plural

        r = self.live.result
        if not self.live.enabled:
            text = "Off."
        elif r is None:
            text = "Waiting for labels…"
        elif r.fast is None:
            text = "Label objects of two classes to see predictions."
        else:
            f = r.fast
            if r.estimated_counts is not None:  # a big image: from a sample, not every object
                counts = np.round(r.estimated_counts).astype(int)
                parts = [f"{c}: ~{int(counts[i])}" for i, c in enumerate(r.table.class_names)]
                text = f"Predicted (estimated from a sample of {r.sample_size} objects; the "
                text += "tint shows the objects in view): " + ", ".join(parts)
            else:
                counts = f.counts()
                parts = [f"{c}: {int(counts[i])}" for i, c in enumerate(r.table.class_names)]
                text = "Predicted: " + ", ".join(parts)
            if f.balanced_accuracy is not None:
                text += (
                    f"\nAccuracy estimate: {f.balanced_accuracy * 100:.0f} % balanced "
                    f"(out-of-bag, {plural(f.estimated_on, 'label')})"
                )
            else:
                text += "\nAccuracy estimate: more labels needed"
        self.summary.setText(text)
