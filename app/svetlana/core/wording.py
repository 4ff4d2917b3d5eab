"""Texts built from numbers, shared by the CLI and the GUI: plurals, object sizes, accuracy estimates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

# Irregular plurals of the nouns Svetlana counts; every other noun takes an "s".
_IRREGULAR = {"class": "classes", "patch": "patches", "index": "indices"}


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``"1 label"``, ``"2 labels"``, ``"0 classes"``: the count and the noun in agreement."""
    n = int(n)
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {plural_form or _IRREGULAR.get(noun, noun + 's')}"


def _number(value: float) -> str:
    """Three significant digits, thousands separated: 0.0123, 1.23, 12.3, 123, 1,234."""
    if value == 0 or not math.isfinite(value):
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{digits}f}"


def object_size(pixels: float, ndim: int, spacing: Sequence[float] | None = None) -> str:
    """An object's area (2D) or volume (3D): in µm² / µm³ when the voxel size is known, else px.

    ``pixels`` is the object's pixel (voxel) count, ``spacing`` the image's (Y, X) or (Z, Y, X)
    pixel size in micrometres, or None when the file did not say.
    """
    if spacing is not None and len(spacing) == ndim:
        physical = float(pixels) * math.prod(float(s) for s in spacing)
        return f"{_number(physical)} µm{'³' if ndim == 3 else '²'}"
    return f"{round(float(pixels)):,} {'voxels' if ndim == 3 else 'px'}"


def size_word(ndim: int) -> str:
    return "volume" if ndim == 3 else "area"


def nice_length(target: float) -> float:
    """The round length (1, 2 or 5 times a power of ten) nearest below ``target`` (> 0)."""
    if not (target > 0 and math.isfinite(target)):
        return 1.0
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return step * power
    return power


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound also for few objects and 0 % or 100 %).

    The closed form (the same numbers as ``scipy.stats.binomtest(...).proportion_ci(
    method="wilson")``, which the tests check) because importing scipy.stats takes about a
    second, too long for the GUI thread that shows a model card.
    """
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _percent(x: float) -> str:
    return f"{x * 100:.0f} %"


def accuracy_estimate(metrics: Mapping) -> str:
    """The model's accuracy with what it rests on and how uncertain it is.

    ``metrics`` as in a model card: ``accuracy`` and ``n_val`` (validation objects; 0 when none
    were kept aside, in which case the accuracy is on the training objects and says little).
    """
    acc = metrics.get("accuracy")
    if not isinstance(acc, int | float) or not math.isfinite(acc):
        return "accuracy unknown"
    n_val = int(metrics.get("n_val") or 0)
    if n_val <= 0:
        n_train = metrics.get("n_train")
        on = f" on the {plural(int(n_train), 'training object')}" if n_train else ""
        return (
            f"accuracy {_percent(acc)}{on} (no objects kept aside for validation: "
            "not an estimate for new objects)"
        )
    low, high = wilson_interval(round(acc * n_val), n_val)
    if metrics.get("estimate") == "out-of-bag":  # a forest (and its linear part): choosing.py
        every = "the labelled object" if n_val == 1 else f"each of the {n_val:,} labelled objects"
        return (
            f"accuracy {_percent(acc)} expected on objects like the labelled ones ({every} "
            f"predicted by models that did not learn from it; 95 % interval "
            f"{low * 100:.0f}–{_percent(high)})"
        )
    if metrics.get("estimate") == "cross-validation":
        return (
            f"accuracy {_percent(acc)} cross-validated on {plural(n_val, 'labelled object')} "
            f"(95 % interval {low * 100:.0f}–{_percent(high)})"
        )
    return (
        f"accuracy {_percent(acc)} on {plural(n_val, 'validation object')} "
        f"(95 % interval {low * 100:.0f}–{_percent(high)})"
    )
