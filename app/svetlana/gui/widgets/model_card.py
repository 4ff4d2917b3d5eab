"""How a trained model is shown: its training curves and its card (accuracy, kind, the
candidates cross-validated), for the Train tab's model list."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QVBoxLayout,
    QWidget,
)

from svetlana.core.ml.column_words import measurement_words
from svetlana.core.wording import accuracy_estimate, plural


class TrainingCurves(QWidget):
    """Loss and accuracy per epoch, training (solid) and validation (dashed)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget(title="loss")
        self.acc_plot = pg.PlotWidget(title="accuracy")
        for p in (self.loss_plot, self.acc_plot):
            p.setBackground("w")
            p.showGrid(x=True, y=True, alpha=0.3)
            p.setLabel("bottom", "epoch")
            p.addLegend(offset=(-10, 10))
            p.setMinimumHeight(140)
            # The wheel scrolls the panel, never zooms: a zoom would stay for later trainings.
            p.setMouseEnabled(x=False, y=False)
            p.setMenuEnabled(False)
            p.hideButtons()
            lay.addWidget(p)
        self.acc_plot.setYRange(0, 1.02)
        # A forest learns in one go: what it shows instead of curves (``show_model``).
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("QLabel { padding: 12px; }")
        self.note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note.hide()
        lay.addWidget(self.note)
        train_pen = pg.mkPen("#1f77b4", width=2)
        val_pen = pg.mkPen("#d62728", width=2, style=Qt.PenStyle.DashLine)
        self.loss_train = self.loss_plot.plot([], [], pen=train_pen, name="training")
        self.loss_val = self.loss_plot.plot([], [], pen=val_pen, name="validation")
        self.acc_train = self.acc_plot.plot([], [], pen=train_pen, name="training")
        self.acc_val = self.acc_plot.plot([], [], pen=val_pen, name="validation")
        self.rows: list[dict] = []

    def show_model(self, card: Mapping, rows: Sequence[Mapping] | None = None) -> None:
        """A model's curves (``rows``, else its card's history), or for a forest, which has
        none, a sentence saying so with its cross-validated accuracy."""
        forest = card.get("kind") == "forest" or card.get("architecture") == "forest"
        history = list(rows if rows is not None else card.get("history") or [])
        if forest and not history:
            acc = accuracy_estimate(card.get("metrics") or {})
            self.note.setText(
                "A forest has no training curve: it learns from the measurements in one go, "
                f"not epoch by epoch. {acc[:1].upper() + acc[1:]}."
            )
        self._show_note(forest and not history)
        self.set_rows(history)

    def _show_note(self, note: bool) -> None:
        self.note.setVisible(note)
        self.loss_plot.setVisible(not note)
        self.acc_plot.setVisible(not note)

    def clear(self) -> None:
        self._show_note(False)
        self.rows = []
        for p in (self.loss_plot, self.acc_plot):
            p.enableAutoRange(x=True, y=p is self.loss_plot)
        self._redraw()

    def add_rows(self, rows: Sequence[Mapping]) -> None:
        self.rows.extend(dict(r) for r in rows)
        self._redraw()

    def set_rows(self, rows: Sequence[Mapping]) -> None:
        self.rows = [dict(r) for r in rows]
        self._redraw()

    def _redraw(self) -> None:
        def series(key: str) -> tuple[np.ndarray, np.ndarray]:
            pts = [
                (r["epoch"], r[key])
                for r in self.rows
                if r.get(key) is not None and math.isfinite(r[key])
            ]
            if not pts:
                return np.zeros(0), np.zeros(0)
            a = np.asarray(pts, dtype=float)
            return a[:, 0], a[:, 1]

        self.loss_train.setData(*series("loss"))
        self.loss_val.setData(*series("val_loss"))
        self.acc_train.setData(*series("accuracy"))
        self.acc_val.setData(*series("val_accuracy"))


def format_card(card: Mapping) -> str:
    """The model card as a few lines of HTML a biologist can read."""
    metrics = card.get("metrics") or {}
    acc = metrics.get("accuracy")
    counts = card.get("label_counts") or {}
    labels = ", ".join(f"{c}: {n}" for c, n in counts.items()) or ", ".join(card.get("classes", []))
    training = card.get("training") or {}
    rows = [
        ("Model", card.get("id", "")),
        ("Architecture", card.get("architecture", "?")),
        ("Classes", ", ".join(card.get("classes", []))),
        ("Labels", f"{card.get('n_labels', '?')} ({labels})"),
        (
            "Accuracy",
            accuracy_estimate(metrics).removeprefix("accuracy ")
            if isinstance(acc, int | float)
            else "–",
        ),
        *_kind_rows(card, training),
        ("Trained", str(card.get("created", "?")).replace("T", " ")[:19]),
        (
            "Device",
            f"{card.get('device', '?')}"
            + (f", {plural(int(card['threads']), 'thread')}" if card.get("threads") else ""),
        ),
        ("Time", f"{float(card.get('seconds', 0)):.1f} s"),
    ]
    body = "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>" + candidates_html(card)


def _kind_rows(card: Mapping, training: Mapping) -> list[tuple[str, str]]:
    if card.get("kind") == "forest" or card.get("architecture") == "forest":
        return [
            ("Kind", f"forest of {card.get('trees', '?')} trees on object measurements"),
            ("Decides by", decides_by(card)),
        ]
    cnn_rows = [
        ("Patch size", f"{card.get('patch_size', '?')} px"),
        ("Epochs", str(len(card.get("history") or []) or training.get("epochs", "?"))),
    ]
    if card.get("kind") == "hybrid":
        arch = html.escape(str(card.get("cnn_architecture", "?")))
        return [
            (
                "Kind",
                f"hybrid: forest of {card.get('trees', '?')} trees on object measurements "
                f"+ the class probabilities of the CNN {arch}",
            ),  # fmt: skip
            ("Decides by", decides_by(card)),
            *cnn_rows,
        ]
    return cnn_rows


def decides_by(card: Mapping, top: int = 5) -> str:
    """The forest's most important measurements, in words (HTML), most important first."""
    rows = card.get("importances") or []
    words = [html.escape(measurement_words(str(t.get("name"))), quote=False) for t in rows[:top]]
    return "; ".join(words) or "–"


def candidates_html(card: Mapping) -> str:
    """The cross-validated comparison of the candidates (``--arch auto``), or ""."""
    sel = card.get("selection") or {}
    rows = sel.get("candidates") or []
    if not rows:
        return ""
    cv = sel.get("cv") or {}
    how = f"{cv.get('folds', '?')}-fold cross-validation" + (
        ", grouped by image" if cv.get("grouped_by_image") else ""
    )
    if sel.get("effort") and isinstance(sel.get("budget_s"), int | float):
        how += f", {html.escape(str(sel['effort']))} mode, budget {sel['budget_s']:.0f} s"
    lines = [candidate_text(r, r.get("name") == sel.get("chosen")) for r in rows]
    reason = html.escape(str(sel.get("reason", "")))
    return (
        f"<p><b>Candidates</b> ({how}; balanced accuracy):<br>"
        + "<br>".join(lines)
        + f"<br><i>Chosen: {html.escape(str(sel.get('chosen')))}</i> – {reason}</p>"
    )


def candidate_text(row: Mapping, chosen: bool = False) -> str:
    """One candidate as a line of HTML: its mean ± spread over folds, or why it was not run."""
    name = html.escape(str(row.get("name")))
    score = row.get("balanced_accuracy")
    if row.get("status") == "done" and isinstance(score, int | float):
        text = f"{score:.1%} ± {float(row.get('spread') or 0):.1%} ({float(row.get('seconds', 0)):.1f} s)"
        if row.get("note"):  # what it is, e.g. the forest with its linear part
            text += f", {html.escape(str(row['note']))}"
    else:
        status, note = str(row.get("status")), str(row.get("note") or "")
        # A note that already says it ("stopped after 0 of 3 folds: ...") is not prefixed twice.
        text = html.escape(note if note.startswith(status) else f"{status}: {note}".rstrip(": "))
    line = f"{name}: {text}"
    return f"<b>✔ {line}</b>" if chosen else f"&nbsp;&nbsp;&nbsp;{line}"
