"""Objects as GeoJSON for QuPath and GIS tools: outlines (holes kept) with class and measurements."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.jobs import CancelToken, Progress, ProgressFn

log = logging.getLogger(__name__)

FORMATS = ("geojson",)


@dataclass(frozen=True)
class ObjectsExport:
    """What export_objects wrote: one file per image, the objects and the model used."""

    files: tuple[Path, ...]
    objects: int
    model_id: str


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def _inside(point: np.ndarray, ring: np.ndarray) -> bool:
    """Even-odd ray casting of one point against a closed ring (vectorised over its edges)."""
    x, y = point
    x0, y0, x1, y1 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(crosses & (x < xs)) % 2)


def outline_polygons(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> list[list[np.ndarray]]:
    """Polygons (exterior ring, then its holes) of a 2D boolean mask, in QuPath's pixel
    coordinates (x right, y down; pixel (0, 0) covers [0, 1) x [0, 1)), ``origin`` = (row, col)
    of the mask's first pixel. The outline runs through the pixel edges' midpoints (marching
    squares at 0.5, diagonal neighbours joined), so a polygon's area is the pixel count within
    half a pixel per boundary pixel. Rings are closed; exteriors counter-clockwise in (x, y)."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(np.float32), 1)
    rings = []
    for c in find_contours(padded, 0.5, fully_connected="high"):
        if len(c) < 4:
            continue
        # (row, col) of the padded mask -> (x, y) of the image: pixel centres at +0.5.
        xy = np.stack([c[:, 1] - 1 + origin[1] + 0.5, c[:, 0] - 1 + origin[0] + 0.5], axis=1)
        if not np.array_equal(xy[0], xy[-1]):
            xy = np.vstack([xy, xy[:1]])
        rings.append(xy)
    if not rings:
        return []
    areas = [_signed_area(r) for r in rings]
    outer_sign = np.sign(areas[int(np.argmax(np.abs(areas)))])
    exteriors = [k for k, a in enumerate(areas) if np.sign(a) == outer_sign]
    holes = [k for k, a in enumerate(areas) if np.sign(a) != outer_sign]
    polys: list[list[np.ndarray]] = []
    for k in exteriors:
        ring = rings[k] if areas[k] > 0 else rings[k][::-1]
        polys.append([ring])
    for k in holes:
        ring = rings[k] if areas[k] < 0 else rings[k][::-1]
        # The smallest exterior that contains the hole (nested objects are separate polygons).
        owners = [j for j, e in enumerate(exteriors) if _inside(ring[0], rings[e])]
        if owners:
            j = min(owners, key=lambda j: abs(areas[exteriors[j]]))
            polys[j].append(ring)
    return polys


def _geometry(polys: list[list[np.ndarray]]) -> dict:
    coords = [[np.round(r, 3).tolist() for r in poly] for poly in polys]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def _rgb(colour: str) -> list[int]:
    text = colour.lstrip("#")
    try:
        return [int(text[i : i + 2], 16) for i in (0, 2, 4)]
    except ValueError:
        return [255, 255, 255]


def export_objects(
    project,
    out_dir: str | Path,
    images: Sequence[str] | None = None,
    *,
    fmt: str = "geojson",
    model_id: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ObjectsExport:
    """``out_dir/<image>.geojson`` per image: a FeatureCollection of QuPath detections, one per
    object: its outline, ``classification`` (final class and colour), ``measurements`` (object
    id, confidence, p_<class>, every measurement) and ``name`` (the object id). 2D images only."""
    from svetlana.core.fileio import atomic_write_text
    from svetlana.core.measurements import project_measurements
    from svetlana.core.tables import _check_images, _check_out, load_results

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    names = _check_images(project, images)
    out_dir = _check_out(out_dir)
    volumes = [im for im in names if project.image(im).ndim != 2]
    if volumes:
        raise InputError(
            f"GeoJSON outlines are 2D and {', '.join(map(repr, volumes))} "
            f"{'is' if len(volumes) == 1 else 'are'} 3D; export 2D images only (--image), or "
            "use `svetlana export-table` for 3D measurements",
            project.path,
        )
    results = load_results(project, names, model_id)
    documents = []
    total = 0
    for k, name in enumerate(names):
        if cancel is not None:
            cancel.raise_if_cancelled()
        m = project_measurements(project, name, cancel=cancel)
        loaded = project.load(name)
        table = loaded.table
        r = results.images[name]
        features = []
        for i, obj in enumerate(table.ids):
            if i % 256 == 0:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if progress is not None:
                    frac = (k + i / max(len(table), 1)) / len(names)
                    progress(Progress("export", int(frac * 1000), 1000, f"outlining {name}"))
            y0, x0, y1, x1 = (int(v) for v in table.bbox[i])
            polys = outline_polygons(loaded.labels[y0:y1, x0:x1] == obj, (y0, x0))
            if not polys:
                continue
            meas: dict[str, float] = {"object": int(obj)}
            if results.model_id and np.isfinite(r.confidence[i]):
                meas["confidence"] = round(float(r.confidence[i]), 5)
                for c, p in zip(results.model_classes, r.probs[i], strict=True):
                    if np.isfinite(p):
                        meas[f"p_{c}"] = round(float(p), 5)
            row = m.values[i]
            meas.update({n: float(v) for n, v in zip(m.names, row.tolist(), strict=True)})
            props: dict = {"objectType": "detection", "name": str(int(obj)), "isLocked": False}
            if r.final[i]:
                props["classification"] = {
                    "name": str(r.final[i]),
                    "color": _rgb(results.colours.get(str(r.final[i]), "#ffffff")),
                }
            props["measurements"] = meas
            features.append({"type": "Feature", "geometry": _geometry(polys), "properties": props})
        total += len(features)
        documents.append((name, {"type": "FeatureCollection", "features": features}))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, doc in documents:
        path = out_dir / f"{_file_stem(name)}.geojson"
        atomic_write_text(path, json.dumps(doc, separators=(",", ":"), allow_nan=False))
        files.append(path)
    if progress is not None:
        progress(Progress("export", 1000, 1000, f"wrote {len(files)} GeoJSON file(s)"))
    return ObjectsExport(tuple(files), total, results.model_id)
