"""Persistent window state (geometry, recent projects) in a QSettings that callers can inject."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


def default_settings() -> QSettings:
    """The user's settings (tests pass their own QSettings instead)."""
    return QSettings("Svetlana", "Svetlana")


class Settings:
    """Typed access to the few things the window remembers."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else default_settings()

    def recent_projects(self) -> list[Path]:
        value = self.q.value("recent_projects", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [Path(v) for v in (value or [])]

    def add_recent(self, path: str | Path) -> None:
        path = Path(path).resolve()
        items = [p for p in self.recent_projects() if p != path]
        items.insert(0, path)
        self.q.setValue("recent_projects", [str(p) for p in items[:MAX_RECENT]])
        self.q.sync()

    def remove_recent(self, path: str | Path) -> None:
        path = Path(path)
        self.q.setValue("recent_projects", [str(p) for p in self.recent_projects() if p != path])
        self.q.sync()

    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)
        self.q.sync()

    def value(self, key: str, default=None):
        return self.q.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.q.setValue(key, value)
