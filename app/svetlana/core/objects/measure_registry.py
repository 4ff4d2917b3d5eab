"""The measurement families: name -> columns -> how they are computed, so that each family can be
computed alone and a model's columns cost only their families.

Built in: ``shape``, then per channel ``intensity``, ``ring``, ``shells``, ``filterbank`` (filled
by the band pass of core/objects/measure_band.py), then ``context`` (core/objects/families.py).
A new family is one line, in its own module, imported at the end of this one::

    register_family(Family("haralick", my_columns, compute=my_compute))

``my_columns(ndim, prefixes, unit)`` gives its ``(name, unit)`` pairs (channel columns start with
a channel prefix, ``ch0_``...; ``unit`` is "px" or "um"); ``my_compute(FamilyInput)`` gives a
``{name: (n,) array}`` for the columns of ``FamilyInput.prefixes`` (NaN/Inf are cleaned after).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCALES = (1.0, 2.0, 4.0)  # filter-bank scales, in pixels of the finest axis
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
N_SHELLS = 4  # concentric shells from the centre (radius 0) to the rim (radius 1)

Columns = Callable[[int, Sequence[str], str], list[tuple[str, str]]]


@dataclass(frozen=True)
class FamilyInput:
    """What a family computed after the band pass gets: the mask (numpy, or read along axis 0),
    the measured channels (``channels[c]`` indexable by a region; None where not needed) and
    their robust ranges, the objects measured (``present``, ascending ids; ``every``: they are
    every object of the mask) and their pixel counts, centroids and coordinate covariances
    (physical units), and the channel prefixes whose columns are wanted."""

    labels: Any
    channels: list
    ranges: list
    channel_prefixes: list[str]  # of every channel, by index
    prefixes: list[str]  # the wanted ones
    present: np.ndarray
    every: bool
    count: np.ndarray
    centroid: np.ndarray
    cov: np.ndarray
    spacing: np.ndarray
    mean_intensity: dict = field(
        default_factory=dict
    )  # channel -> (n,) normalised mean (or absent)
    # When ``every``: a function giving families.context_nearest(centroid) (started before the
    # band pass, on a thread), or None (found when the context is computed).
    context_nearest: Any = None


@dataclass(frozen=True)
class Family:
    """A family of measurement columns. ``per_channel``: its columns repeat for each channel
    (``columns(nd, [prefix], unit)``), laid out in the channel block; ``head``: before it (shape);
    else after it. ``compute`` is None for the families of the band pass."""

    name: str
    columns: Columns
    compute: Callable[[FamilyInput], dict[str, np.ndarray]] | None = None
    per_channel: bool = False
    head: bool = False
    needs_means: bool = False  # compute() reads FamilyInput.mean_intensity of its channels


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> None:
    """Add a family (its columns are laid out after those registered before it)."""
    if family.name in FAMILIES:
        raise ValueError(f"measurement family {family.name!r} is registered twice")
    FAMILIES[family.name] = family


# ---- the built-in families' columns -----------------------------------------------------------


def texture_filters(nd: int) -> list[str]:
    return ["gauss", "log", "gradient"] + [f"hessian{k + 1}" for k in range(nd)]


def dog_scales() -> list[float]:
    return [s for s in SCALES if 2 * s in SCALES]


def quantile_name(q: float) -> str:
    return "median" if q == 0.5 else f"q{round(q * 100):02d}"


def _stats() -> list[str]:
    return ["mean", "std", "min", "max"] + [quantile_name(q) for q in QUANTILES]


def _shape(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    if nd == 2:
        out = [("area", f"{u}^2"), ("equivalent_diameter", u)]
        out += [("major_axis_length", u), ("minor_axis_length", u)]
    else:
        out = [("volume", f"{u}^3"), ("equivalent_diameter", u), ("major_axis_length", u)]
        out += [("middle_axis_length", u), ("minor_axis_length", u)]
    out += [("elongation", ""), ("solidity", ""), ("extent", "")]
    if nd == 2:
        out += [("perimeter", u), ("circularity", "")]
    else:
        out += [("surface_area", f"{u}^2"), ("sphericity", "")]
    return out + [("euler_number", "")]


def _intensity(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    out = []
    for p in prefixes:
        out += [(p + s, "intensity") for s in _stats()]
        out += [(p + "skewness", ""), (p + "kurtosis", "")]
        out += [(p + "norm_" + s, "") for s in _stats()]
    return out


def _ring(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    out = []
    for p in prefixes:
        out += [(p + "ring_" + s, "intensity") for s in _stats()]
        for s in ("skewness", "kurtosis", "norm_mean", "norm_std", "ratio", "contrast"):
            out.append((p + "ring_" + s, ""))
    return out


def _shells(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    out = []
    for p in prefixes:
        out += [(p + f"shell{k + 1}_mean", "intensity") for k in range(N_SHELLS)]
        out += [(p + f"shell{k + 1}_profile", "") for k in range(N_SHELLS)]
    return out


def texture_names(nd: int) -> list[str]:
    """The filter-bank responses, in the order of the band pass's texture sums."""
    out = [f"{f}_s{s:g}" for s in SCALES for f in texture_filters(nd)]
    return out + [f"dog_s{s:g}" for s in dog_scales()]


def _filterbank(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    out = []
    for p in prefixes:
        for t in texture_names(nd):
            out += [(p + t + "_mean", ""), (p + t + "_std", "")]
        out += [(p + f"coherence_s{s:g}", "") for s in SCALES]
    return out


def _context(nd: int, prefixes: Sequence[str], u: str) -> list[tuple[str, str]]:
    from svetlana.core.objects.families import family_names

    return family_names(nd, list(prefixes))


def _context_compute(x: FamilyInput) -> dict[str, np.ndarray]:
    from svetlana.core.objects.families import context_columns

    return context_columns(x)


register_family(Family("shape", _shape, head=True))
register_family(Family("intensity", _intensity, per_channel=True))
register_family(Family("ring", _ring, per_channel=True))
register_family(Family("shells", _shells, per_channel=True))
register_family(Family("filterbank", _filterbank, per_channel=True))
register_family(Family("context", _context, compute=_context_compute, needs_means=True))


# ---- the layout of the columns, and what a set of columns costs --------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    family: str
    channel: int | None  # the channel it is measured on (None: none)
    key: str = ""  # the name without its channel prefix (per-channel families)


def layout(nd: int, prefixes: Sequence[str], physical: bool) -> tuple[Column, ...]:
    """Every column, in table order: head families, each channel's families, then the others."""
    u = "um" if physical else "px"
    fams = list(FAMILIES.values())

    def channel_of(name: str) -> int | None:
        for c, p in enumerate(prefixes):
            if name.startswith(p):
                return c
        return None

    out: list[Column] = []
    for f in fams:
        if f.head and not f.per_channel:
            out += [Column(n, un, f.name, channel_of(n)) for n, un in f.columns(nd, prefixes, u)]
    for c, p in enumerate(prefixes):
        for f in fams:
            if f.per_channel:
                out += [Column(n, un, f.name, c, n[len(p) :]) for n, un in f.columns(nd, [p], u)]
    for f in fams:
        if not f.head and not f.per_channel:
            out += [Column(n, un, f.name, channel_of(n)) for n, un in f.columns(nd, prefixes, u)]
    return tuple(out)


@dataclass(frozen=True)
class Plan:
    """What to compute: (family, channel) parts, and the columns they give in table order."""

    parts: frozenset  # of (family name, channel index or None)
    columns: tuple[Column, ...]

    def channels(self, *families: str) -> list[int]:
        """Channels (ascending) that any of ``families`` is computed on."""
        return sorted({c for f, c in self.parts if c is not None and f in families})

    def has(self, family: str) -> bool:
        return any(f == family for f, _ in self.parts)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(c.unit for c in self.columns)


def plan(cols: tuple[Column, ...], wanted: Sequence[str] | None) -> Plan:
    """The parts that give ``wanted`` (None: every column; unknown names are left out, for the
    caller to report) and those columns, in table order: each part computes only what its
    wanted columns need (core/objects/measure_band.py's ``Want``), so the others are not given."""
    if wanted is None:
        given = cols
    else:
        want = set(wanted)
        given = tuple(c for c in cols if c.name in want)
    return Plan(frozenset((c.family, c.channel) for c in given), given)
