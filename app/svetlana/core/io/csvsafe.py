"""Spreadsheet-safe CSV: the one writer every Svetlana CSV goes through, and its inverse for reading.

A cell that a spreadsheet would read as a formula (OWASP "CSV injection": text starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return, possibly after spaces) is written with a
leading single quote, which Excel and LibreOffice show as text. Numbers (``int``/``float``
values, and text that is exactly a decimal number such as ``-0.5``) are never altered.
The prefix is reversible: ``restore`` gives back the original text, and a text that itself
starts with a quote before a trigger gets one more quote, so every string round-trips.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_RISKY_FIRST = frozenset((*TRIGGERS, " ", "'"))  # the only first characters worth a closer look
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_prefix(text: str) -> bool:
    if text.startswith("'"):
        return _needs_prefix(text[1:])
    stripped = text.lstrip(" ")
    return bool(stripped) and stripped[0] in TRIGGERS and not _NUMBER.fullmatch(stripped)


def neutralise(value: Any) -> Any:
    """The cell to write for ``value``: text that would run as a formula gets a leading ``'``."""
    if isinstance(value, str) and value[:1] in _RISKY_FIRST and _needs_prefix(value):
        return "'" + value
    return value


def restore(text: str) -> str:
    """The original text of a cell written by ``neutralise`` (other text is returned as is)."""
    if text[:1] == "'" and _needs_prefix(text[1:]):
        return text[1:]
    return text


def write_csv(
    f: TextIO,
    header: Sequence[str],
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    with_header: bool = True,
) -> None:
    """Write ``header`` (unless ``with_header`` is False: more rows of a file begun) and
    ``rows`` to the text file ``f`` as they come (``\\n`` line ends; rows are sequences, or
    mappings keyed by the header's names, a missing key an empty cell), every cell neutralised.
    Memory stays one row whatever the number of rows."""
    w = csv.writer(f, lineterminator="\n")
    # With "\n" line ends the csv module leaves a lone "\r" unquoted, which readers take for
    # a line end: a row holding one is written fully quoted (valid CSV, read back the same).
    quoted = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
    risky = _RISKY_FIRST
    for row in itertools.chain([header] if with_header else [], rows):
        cells = [row.get(h, "") for h in header] if isinstance(row, Mapping) else list(row)
        carriage = False
        for i, c in enumerate(cells):  # only text can hold a formula or a carriage return
            if isinstance(c, str):
                if c[:1] in risky and _needs_prefix(c):
                    cells[i] = "'" + c
                carriage = carriage or "\r" in c
        (quoted if carriage else w).writerow(cells)


def to_csv_text(
    header: Sequence[str] | None, rows: Iterable[Sequence[Any] | Mapping[str, Any]]
) -> str:
    """CSV text of ``header`` and ``rows``, as ``write_csv`` writes it."""
    buf = io.StringIO()
    write_csv(buf, header, rows)
    return buf.getvalue()


def read_dicts(f: TextIO, **kwargs: Any) -> Iterator[dict[str, str]]:
    """``csv.DictReader`` over ``f`` with every key and value restored (see ``restore``)."""
    for row in csv.DictReader(f, **kwargs):
        yield {
            restore(k) if isinstance(k, str) else k: restore(v) if isinstance(v, str) else v
            for k, v in row.items()
        }
