"""The models of a bundle: ``models/<id>/`` folders, registered in the manifest once complete."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from svetlana.core.errors import InputError, ModelError
from svetlana.core.io import bundlefs
from svetlana.core.project.lock import now_iso

SAFE_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")


class ModelRegistry:
    """Model ids, folders and cards of one project (``project.models``).

    ``entries()`` reads the manifest's model list; ``save(entries)`` writes it (the project
    checks it is writable and writes the manifest atomically).
    """

    def __init__(
        self,
        bundle: Path,
        entries: Callable[[], list[dict]],
        save: Callable[[list[dict]], None],
    ):
        self.bundle = bundle
        self.folder = bundle / "models"
        self._entries = entries
        self._save = save

    def ids(self) -> list[str]:
        """Registered models, oldest first (a folder not in the manifest was never finished)."""
        # lexists: a model whose folder or card is a link is listed, and refused when used.
        return [
            m["id"] for m in self._entries() if os.path.lexists(self.folder / m["id"] / "card.json")
        ]

    def card(self, model_id: str) -> dict:
        """The model's card, checked (see ``ml.cards.check_card``): ModelError naming it."""
        from svetlana.core.ml.cards import check_card

        path = self.dir(model_id) / "card.json"
        return check_card(bundlefs.read_json(self.bundle, path, ModelError), path)

    def dir(self, model_id: str) -> Path:
        """``models/<id>``: a safe name, and a real folder of the bundle (never a link)."""
        if not isinstance(model_id, str) or not SAFE_MODEL_ID.match(model_id):
            raise InputError(
                f"model name {model_id!r} may use only letters, digits, '-', '_' and '.'"
            )
        return bundlefs.check(self.bundle, f"models/{model_id}", "dir", error=ModelError)

    def latest(self) -> str | None:
        ids = self.ids()
        return ids[-1] if ids else None

    def resolve(self, model_id: str | None) -> str:
        """``model_id`` if registered, the latest model when None; else a clear InputError."""
        ids = self.ids()
        if model_id is None:
            if not ids:
                raise InputError(
                    "the project has no trained model yet; run `svetlana train` first", self.bundle
                )
            return ids[-1]
        if model_id not in ids:
            raise InputError(
                f"no model named {model_id!r} (models: {', '.join(ids) or 'none'})", self.bundle
            )
        return model_id

    def new_id(self, name: str | None = None) -> str:
        """``name`` checked (safe, unused), or the next free ``model-N``."""
        folder = bundlefs.check(self.bundle, "models", "dir")
        existing = {p.name for p in folder.iterdir()} if folder.exists() else set()
        existing |= set(self.ids())
        if name is not None:
            self.dir(name)
            if name in existing:
                raise InputError(
                    f"a model named {name!r} already exists; choose another --name", self.bundle
                )
            return name
        k = 1
        while f"model-{k}" in existing:
            k += 1
        return f"model-{k}"

    def register(self, model_id: str, summary: dict | None = None) -> None:
        """Record a model whose folder is complete (card.json written); manifest last."""
        entries = [m for m in self._entries() if m["id"] != model_id]
        entries.append({"id": model_id, "created": now_iso(), **(summary or {})})
        self._save(entries)

    def remove(self, model_id: str) -> None:
        self._save([m for m in self._entries() if m["id"] != model_id])
        bundlefs.remove(self.bundle, self.dir(model_id))
