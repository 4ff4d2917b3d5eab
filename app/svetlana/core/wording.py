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


# ---- measurement columns in words ---------------------------------------------------------------

_SHAPE_WORDS = {
    "area": "area",
    "volume": "volume",
    "equivalent_diameter": "diameter (of the disc of the same area)",
    "major_axis_length": "length (major axis)",
    "middle_axis_length": "middle axis length",
    "minor_axis_length": "width (minor axis)",
    "elongation": "elongation",
    "solidity": "solidity (convexity)",
    "extent": "extent (how much of its bounding box it fills)",
    "perimeter": "perimeter",
    "surface_area": "surface area",
    "circularity": "circularity",
    "sphericity": "sphericity",
    "euler_number": "holes (Euler number)",
}
_STAT_WORDS = {
    "mean": "mean",
    "std": "spread (std)",
    "min": "minimum",
    "max": "maximum",
    "median": "median",
    "skewness": "skewness",
    "kurtosis": "kurtosis",
}
_FILTER_WORDS = {
    "gauss": "smoothed intensity",
    "log": "spot texture",
    "gradient": "edge texture",
    "dog": "blob texture (difference of Gaussians)",
    "coherence": "texture orientation",
}
_SCALE_WORDS = ("fine", "medium", "coarse")
_CONTEXT_WORDS = {
    "context_size_ratio": "size relative to its neighbours",
    "context_nb_size": "neighbours' size",
    "context_nb_elongation": "neighbours' elongation",
}


def _ordinal(k: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(k, f"{k}th")


def _channel_words(name: str) -> tuple[str, str] | None:
    """``(the channel in words, the rest of the name)`` of a per-channel column, else None."""
    import re

    from svetlana.core.objects.stains import PREFIXES, STAINS

    m = re.match(r"ch(\d+)_(.+)$", name)
    if m:
        return f"channel {int(m.group(1)) + 1}", m.group(2)
    for prefix, stain in zip(PREFIXES, STAINS, strict=True):
        if name.startswith(prefix):
            return stain.replace("hematoxylin", "haematoxylin"), name[len(prefix) :]
    return None


def _stat_words(key: str) -> str | None:
    """``mean`` -> "mean", ``q05`` -> "5th percentile"; None when ``key`` is no statistic."""
    import re

    if key in _STAT_WORDS:
        return _STAT_WORDS[key]
    m = re.fullmatch(r"q(\d\d)", key)
    return f"{_ordinal(int(m.group(1)))} percentile" if m else None


def _channel_column_words(channel: str, key: str) -> str | None:
    import re

    from svetlana.core.objects.measure_registry import N_SHELLS, SCALES

    normalised = key.startswith("norm_")
    stat = _stat_words(key.removeprefix("norm_"))
    if stat:
        return f"{stat} intensity of {channel}" + (" (normalised)" if normalised else "")
    if key.startswith("ring_"):
        rest = key.removeprefix("ring_")
        if rest == "ratio":
            return f"{channel}: object over its surroundings (ratio)"
        if rest == "contrast":
            return f"{channel}: contrast with its surroundings"
        stat = _stat_words(rest.removeprefix("norm_"))
        if stat:
            norm = ", normalised" if rest.startswith("norm_") else ""
            return f"{stat} intensity of {channel} around the object (ring{norm})"
    m = re.fullmatch(r"shell(\d+)_(mean|profile)", key)
    if m:
        where = f"shell {m.group(1)} of {N_SHELLS}, centre to rim"
        what = "mean intensity" if m.group(2) == "mean" else "radial profile"
        return f"{what} of {channel} ({where})"
    m = re.fullmatch(r"(gauss|log|gradient|hessian\d|dog|coherence)_s([\d.]+)(?:_(mean|std))?", key)
    if m:
        kind, sigma, stat = m.groups()
        scales = [f"{s:g}" for s in SCALES]
        scale = _SCALE_WORDS[scales.index(sigma)] if sigma in scales and len(scales) == 3 else ""
        scale = f"{scale} scale" if scale else f"σ {sigma} px"
        what = _FILTER_WORDS.get(kind) or (
            f"ridge texture ({_ordinal(int(kind.removeprefix('hessian')))} direction)"
        )
        spread = ", its spread over the object" if stat == "std" else ""
        return f"{what} of {channel} ({scale}{spread})"
    if key == "context_nb_intensity":
        return f"neighbours' intensity of {channel}"
    if key == "context_intensity_ratio":
        return f"intensity of {channel} relative to its neighbours"
    return None


def measurement_words(name: str) -> str:
    """A measurement column (``ch0_log_s1_mean``, ``nb_area``...) as a biologist reads it
    ("spot texture of channel 1 (fine scale)", "neighbours' mean of area"); the column's own
    name when it has no words here. The columns: README, *Object measurements*."""
    words = _words(name)
    return name if words is None else words


def _words(name: str) -> str | None:
    import re

    from svetlana.core.ml.hybrid import STACK_PREFIX
    from svetlana.core.objects.neighbours import PREFIX as NEIGHBOURS

    if name.startswith(NEIGHBOURS):
        words = _words(name[len(NEIGHBOURS) :])
        return None if words is None else f"neighbours' mean of {words}"
    if name.startswith(STACK_PREFIX):
        return f"the CNN's probability of {name[len(STACK_PREFIX) :]}"
    if name in _SHAPE_WORDS:
        return _SHAPE_WORDS[name]
    if name in _CONTEXT_WORDS:
        return _CONTEXT_WORDS[name]
    m = re.fullmatch(r"context_nn(\d+)", name)
    if m:
        k = int(m.group(1))
        nth = "" if k == 1 else f"{_ordinal(k)} "
        return f"distance to the {nth}nearest object (in object diameters)"
    m = re.fullmatch(r"context_count_r(\d+)", name)
    if m:
        return f"objects within {m.group(1)} object diameters"
    split = _channel_words(name)
    return None if split is None else _channel_column_words(*split)
