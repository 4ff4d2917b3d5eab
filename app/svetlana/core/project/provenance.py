"""``run.json``: which model, which Svetlana and which images made the files of an output folder."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from svetlana.core.io.fileio import atomic_write_json, read_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CARD_FILE = "card.json"


def card_digest(model_dir: str | Path) -> str:
    """sha256 of the model's ``card.json`` bytes ("" when it cannot be read)."""
    from svetlana.core.errors import SvetlanaError
    from svetlana.core.io.fileio import JSON_LIMIT, read_regular_bytes

    try:  # a regular file only, never through a link (it may be a received bundle's)
        data = read_regular_bytes(Path(model_dir) / CARD_FILE, JSON_LIMIT, follow=False)
        return hashlib.sha256(data).hexdigest()
    except (OSError, SvetlanaError) as exc:
        log.info("no card digest for %s (%s)", model_dir, exc)
        return ""


def write_run_record(
    out_dir: str | Path,
    *,
    kind: str,
    model_id: str,
    model_dir: str | Path | None,
    images: Sequence[str],
    classes: Sequence[str],
    extra: dict | None = None,
) -> Path:
    """Write ``out_dir/run.json`` (atomically) and return its path."""
    from svetlana import __version__
    from svetlana.core.project.bundle import now_iso

    record = {
        "kind": kind,
        "model": model_id,
        "model_card_sha256": card_digest(model_dir) if model_dir is not None else "",
        "svetlana_version": __version__,
        "date": now_iso(),
        "images": list(images),
        "classes": list(classes),
        "final_class_rule": (
            "class = the human label (manual, correction or import) when there is one, "
            "else the model's prediction"
        ),
        **(extra or {}),
    }
    path = Path(out_dir) / RUN_FILE
    atomic_write_json(path, record)
    return path


def read_run_record(out_dir: str | Path) -> dict | None:
    """The folder's run.json, or ``None`` when it is missing or unreadable."""
    path = Path(out_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        rec = read_json(path)
    except Exception as exc:  # noqa: BLE001 - a damaged record only means "unknown provenance"
        log.info("unreadable %s (%s)", path, exc)
        return None
    return rec if isinstance(rec, dict) else None
