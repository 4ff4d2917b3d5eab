"""A model card (``card.json``) checked when read: it comes with a received bundle, so every
field the app uses is checked for its type and range, and a bad one gives one ModelError naming
the card and the field (never an "unexpected" TypeError deep inside prediction)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svetlana.core.errors import ModelError

MAX_PATCH = 4096
MAX_CLASSES = 10_000
MAX_CHANNELS = 4096


def _int(card: dict, key: str, low: int, high: int, path: Path, required: bool = False) -> None:
    if key not in card or card[key] is None:
        if required:
            raise ModelError(f"the model card lacks {key!r}", path)
        return
    v = card[key]
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ModelError(
            f"the model card's {key!r} must be a whole number from {low} to {high}, not {v!r}",
            path,
        )


def _names(card: dict, key: str, path: Path, limit: int) -> list[str]:
    v = card.get(key)
    if (
        not isinstance(v, list)
        or not v
        or len(v) > limit
        or not all(isinstance(c, str) and c for c in v)
    ):
        raise ModelError(f"the model card's {key!r} must be a list of names", path)
    if len(set(v)) != len(v):
        raise ModelError(f"the model card's {key!r} names one twice", path)
    return v


def check_card(card: Any, path: str | Path, need_classes: bool = True) -> dict:
    """``card`` when it is a model card Svetlana can use, else a ModelError naming ``path``
    (``need_classes``: whether the class names must be there; bare network cards lack them)."""
    path = Path(path)
    if not isinstance(card, dict):
        raise ModelError(f"the model card is not a JSON object (found {type(card).__name__})", path)
    forest = card.get("kind") == "forest" or card.get("architecture") == "forest"
    classes = (
        _names(card, "classes", path, MAX_CLASSES) if need_classes or "classes" in card else None
    )
    if not isinstance(card.get("architecture", ""), str | type(None)):
        raise ModelError("the model card's 'architecture' must be a name", path)
    _int(card, "ndim", 2, 3, path)
    _int(card, "channels", 1, MAX_CHANNELS, path)
    _int(card, "in_channels", 1, MAX_CHANNELS + 1, path)
    _int(card, "n_classes", 1, MAX_CLASSES, path)
    _int(card, "patch_size", 1, MAX_PATCH, path, required=not forest and need_classes)
    _int(card, "n_labels", 0, 2**40, path)
    _int(card, "seed", 0, 2**63 - 1, path)
    if not forest and classes and card.get("n_classes") not in (None, len(classes)):
        raise ModelError("the model card's 'n_classes' and 'classes' disagree", path)
    hybrid = card.get("kind") == "hybrid" or card.get("architecture") == "hybrid"
    if forest or hybrid:
        _names(card, "measurements", path, 1_000_000)
    if hybrid and not isinstance(card.get("cnn_architecture"), str):
        raise ModelError("the hybrid model's card must name its 'cnn_architecture'", path)
    for key in ("training_started", "created"):
        if not isinstance(card.get(key, ""), str | type(None)):
            raise ModelError(f"the model card's {key!r} must be a date", path)
    metrics = card.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise ModelError("the model card's 'metrics' must be an object", path)
    for key in ("selection", "training"):
        if card.get(key) is not None and not isinstance(card[key], dict):
            raise ModelError(f"the model card's {key!r} must be an object", path)
    return card
