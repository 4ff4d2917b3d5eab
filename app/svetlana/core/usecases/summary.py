"""What a project holds: images, labels, models, and the corrections made since a model."""

from __future__ import annotations

import logging

from svetlana.core.errors import SvetlanaError
from svetlana.core.project.bundle import Project

log = logging.getLogger(__name__)


# ---- prediction -----------------------------------------------------------------------


def _parse_time(text: str):
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def corrections_since(project: Project, model_id: str | None) -> int:
    """Corrections (labels with source 'correction') made after ``model_id``'s training began.

    A model without ``training_started`` (made before it was recorded) counts from its
    ``created`` time; labels without a time (older projects) are not counted.
    """
    if model_id is None:
        return 0
    try:
        card = project.models.card(model_id)
    except SvetlanaError:
        return 0
    since = _parse_time(card.get("training_started") or card.get("created") or "")
    if since is None:
        return 0
    n = 0
    for _, lab in project.annotations.items():
        if lab.source == "correction":
            t = _parse_time(lab.time)
            n += t is not None and t >= since
    return n


# ---- info -----------------------------------------------------------------------------


def project_summary(project: Project) -> dict:
    store = project.annotations
    images = []
    for e in project.images:
        labelled = store.for_image(e.name)
        images.append(
            {
                "name": e.name,
                "shape": list(e.shape),
                "channels": e.channels,
                "objects": e.n_objects,
                "labelled": len(labelled),
                "spacing": list(e.spacing) if e.spacing else None,
            }
        )
    models = []
    for mid in project.models.ids():
        try:
            card = project.models.card(mid)
        except Exception as exc:  # noqa: BLE001 - a damaged card must not hide the rest of the project
            models.append({"id": mid, "error": str(exc)})
            continue
        metrics = card.get("metrics") or {}
        models.append(
            {
                "id": mid,
                "kind": card.get("kind", "cnn"),
                "architecture": card.get("architecture"),
                "accuracy": metrics.get("accuracy"),
                "metrics": {
                    k: metrics.get(k)
                    for k in ("accuracy", "balanced_accuracy", "n_val", "n_train", "estimate")
                },
                "chosen_by": (card.get("selection") or {}).get("reason"),
                "labels": card.get("n_labels"),
                "created": card.get("created"),
            }
        )
    return {
        "project": str(project.path),
        "classes": [{**c.to_dict(), "count": store.counts().get(c.name, 0)} for c in store.classes],
        "images": images,
        "labels": len(store),
        "models": models,
    }
