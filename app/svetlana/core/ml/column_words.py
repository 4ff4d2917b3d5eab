"""Measurement columns in words, for the model card's *Decides by* and `train`'s most important
measurements (both front-ends): ``ch0_log_s1_mean`` -> "spot texture of channel 1 (fine scale)".

Here, not in core/wording.py (texts from numbers, which imports nothing of Svetlana): it reads
the names of the measurement registry, the stains, the neighbours' and the hybrid's columns.
"""

from __future__ import annotations

import re

from svetlana.core.ml.hybrid import STACK_PREFIX
from svetlana.core.objects.measure_registry import N_SHELLS, SCALES
from svetlana.core.objects.neighbours import PREFIX as NEIGHBOURS
from svetlana.core.objects.stains import PREFIXES, STAINS

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
    m = re.match(r"ch(\d+)_(.+)$", name)
    if m:
        return f"channel {int(m.group(1)) + 1}", m.group(2)
    for prefix, stain in zip(PREFIXES, STAINS, strict=True):
        if name.startswith(prefix):
            return stain.replace("hematoxylin", "haematoxylin"), name[len(prefix) :]
    return None


def _stat_words(key: str) -> str | None:
    """``mean`` -> "mean", ``q05`` -> "5th percentile"; None when ``key`` is no statistic."""
    if key in _STAT_WORDS:
        return _STAT_WORDS[key]
    m = re.fullmatch(r"q(\d\d)", key)
    return f"{_ordinal(int(m.group(1)))} percentile" if m else None


def _channel_column_words(channel: str, key: str) -> str | None:
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
