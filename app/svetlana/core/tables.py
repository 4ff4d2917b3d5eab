"""Tidy tables out of a project: the per-object measurements CSV (one row per object)."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn

log = logging.getLogger(__name__)

MEASUREMENTS_CSV = "measurements.csv"
COLUMNS_CSV = "measurements_columns.csv"


@dataclass(frozen=True)
class TableExport:
    """What an export wrote: the files, rows (objects) and images."""

    files: tuple[Path, ...]
    rows: int
    images: tuple[str, ...]
    columns: tuple[str, ...]


def text_cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (a leading ' before = + - @)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _check_images(project, images: Sequence[str] | None) -> list[str]:
    names = list(project.image_names)
    if not images:
        if not names:
            raise InputError("the project has no images yet", project.path)
        return names
    unknown = [im for im in images if im not in names]
    if unknown:
        raise InputError(
            f"no image named {', '.join(map(repr, unknown))} (images: {', '.join(names)})",
            project.path,
        )
    return list(dict.fromkeys(images))


def _check_out(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    return out_dir


def _format_block(values: np.ndarray) -> list[str]:
    """Rows of numbers as CSV text (%.7g keeps every float32 digit; integers print bare)."""
    if values.size == 0:
        return [""] * values.shape[0]
    buf = io.StringIO()
    np.savetxt(buf, values, fmt="%.7g", delimiter=",")
    return buf.getvalue().splitlines()


def export_measurements(
    project,
    out_dir: str | Path,
    images: Sequence[str] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TableExport:
    """``out_dir/measurements.csv``: image, object, then every measurement (cached in the bundle),
    and ``measurements_columns.csv`` (column, unit). Images with other columns (channels, 2D/3D)
    leave the cells they lack empty."""
    from svetlana.core.fileio import atomic_write_text
    from svetlana.core.measurements import project_measurements

    names = _check_images(project, images)
    out_dir = _check_out(out_dir)
    tables = []
    for k, name in enumerate(names):
        if cancel is not None:
            cancel.raise_if_cancelled()

        def sub(p: Progress, k=k, name=name) -> None:
            if progress is not None:
                frac = (k + p.fraction) / len(names)
                progress(Progress("measure", int(frac * 1000), 1000, f"measuring {name}"))

        tables.append(project_measurements(project, name, progress=sub, cancel=cancel))
    columns: dict[str, str] = {}
    for m in tables:
        for col, unit in zip(m.names, m.units, strict=True):
            columns.setdefault(col, unit)
    order = list(columns)
    lines = [",".join(["image", "object", *order])]
    for name, m in zip(names, tables, strict=True):
        pos = [order.index(c) for c in m.names]
        full = np.full((len(m), len(order)), np.nan, np.float32)
        full[:, pos] = m.values
        body = _format_block(full)
        cell = text_cell(name)
        for obj, row in zip(m.ids, body, strict=True):
            lines.append(f"{cell},{int(obj)},{row.replace('nan', '')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / MEASUREMENTS_CSV
    atomic_write_text(table, "\n".join(lines) + "\n")
    units = out_dir / COLUMNS_CSV
    atomic_write_text(units, "column,unit\n" + "".join(f"{c},{columns[c]}\n" for c in order))
    if progress is not None:
        progress(Progress("measure", 1000, 1000, f"wrote {table.name}"))
    rows = sum(len(m) for m in tables)
    return TableExport((table, units), rows, tuple(names), tuple(order))
