"""Objects as GeoJSON for QuPath and GIS tools: outlines (holes kept) with class and measurements."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svetlana.core.errors import InputError
from svetlana.core.io.outputs import output_stems
from svetlana.core.jobs import CancelToken, Progress, ProgressFn

log = logging.getLogger(__name__)

FORMATS = ("geojson",)


@dataclass(frozen=True)
class ObjectsExport:
    """What export_objects wrote: one file per image, the objects and the model used."""

    files: tuple[Path, ...]
    objects: int
    model_id: str
    note: str = ""  # e.g. "predicted now": said to the user


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


def pixel_outlines(labels: np.ndarray, ids: np.ndarray) -> dict[int, list[list[np.ndarray]]]:
    """The outline of every object ``ids`` of a 2D label image along its pixels' edges: object
    id -> polygons, each [exterior, *holes] as closed (k, 2) arrays of (x, y) vertices in
    QuPath's pixel coordinates (x right, y down; pixel (row, col) is the square
    [col, col + 1) x [row, row + 1)), corners only. The polygons' area is the pixel count
    exactly. Pixels that touch only diagonally are separate parts. Exteriors have a positive
    shoelace area in (x, y), holes a negative one. Vectorised over all objects."""
    from scipy.sparse import csgraph, csr_matrix

    ids = np.asarray(ids, dtype=np.int64)
    h, w = labels.shape
    pad = np.pad(labels, 1)
    if ids.size == 0:
        return {}
    lut_ok = int(pad.max()) <= 4 * pad.size + 1024
    if lut_ok:
        lut = np.full(int(pad.max()) + 1, -1, np.int64)
        lut[ids] = np.arange(ids.size)
        rows_img = lut[pad]
    else:
        pos = np.clip(np.searchsorted(ids, pad), 0, ids.size - 1)
        rows_img = np.where(ids[pos] == pad, pos, -1)
    nvx = w + 1
    # Directed edges with the object on the right (clockwise on screen): top +x, right +y,
    # bottom -x, left -y. Per side: the neighbour that must differ, start and end corners.
    sides = (
        ((-1, 0), (0, 0), (0, 1), 0),
        ((0, 1), (0, 1), (1, 1), 1),
        ((1, 0), (1, 1), (1, 0), 2),
        ((0, -1), (1, 0), (0, 0), 3),
    )
    obj_l, start_l, end_l, dir_l = [], [], [], []
    core = pad[1:-1, 1:-1]
    core_rows = rows_img[1:-1, 1:-1]
    for (dy, dx), (sy, sx), (ey, ex), code in sides:
        other = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        r, c = np.nonzero((core_rows >= 0) & (other != core))
        obj_l.append(core_rows[r, c])
        start_l.append((r + sy) * nvx + (c + sx))
        end_l.append((r + ey) * nvx + (c + ex))
        dir_l.append(np.full(r.size, code, np.int8))
    obj = np.concatenate(obj_l)
    start = np.concatenate(start_l).astype(np.int64)
    end = np.concatenate(end_l).astype(np.int64)
    direction = np.concatenate(dir_l)
    n = obj.size
    nv = (h + 1) * nvx
    key = obj * nv + start
    order = np.argsort(key, kind="stable")
    skey = key[order]
    target = obj * nv + end
    by_target = np.argsort(target)  # sorted queries: searchsorted walks forward (fast)
    lo = np.empty(n, np.int64)
    lo[by_target] = np.searchsorted(skey, target[by_target], "left")
    succ = order[np.minimum(lo, n - 1)]
    saddle = np.flatnonzero((lo + 1 < n) & (skey[np.minimum(lo + 1, n - 1)] == target))
    if saddle.size:  # two ways on: keep turning right, so diagonal pixels stay apart
        alt = order[lo[saddle] + 1]
        want = (direction[saddle] + 1) % 4
        succ[saddle] = np.where(direction[succ[saddle]] == want, succ[saddle], alt)
    # Rings = cycles of the successor permutation; order each from its smallest edge.
    graph = csr_matrix((np.ones(n, np.int8), (np.arange(n), succ)), shape=(n, n))
    _, ring = csgraph.connected_components(graph, directed=True, connection="weak")
    root = np.full(ring.max() + 1, n, np.int64)
    np.minimum.at(root, ring, np.arange(n))
    is_last = succ == root[ring]  # the edge before the root ends the list
    dist = np.where(is_last, 0, 1).astype(np.int64)
    nxt = np.where(is_last, np.arange(n), succ)
    while True:  # pointer jumping: distance from each edge to its ring's last edge
        jump = nxt[nxt]
        if np.array_equal(jump, nxt):
            break
        dist = dist + dist[nxt]
        nxt = jump
    seq = np.lexsort((-dist, ring))
    ring_s, dir_s, start_s = ring[seq], direction[seq], start[seq]
    first = np.ones(n, bool)
    first[1:] = ring_s[1:] != ring_s[:-1]
    prev_dir = np.roll(dir_s, 1)
    ring_start = np.flatnonzero(first)
    ring_end = np.append(ring_start[1:], n) - 1
    prev_dir[ring_start] = dir_s[ring_end]
    corner = dir_s != prev_dir
    vy, vx = np.divmod(start_s[corner], nvx)
    cring = ring_s[corner]
    xy = np.stack([vx, vy], axis=1).astype(np.float64)
    cuts = np.flatnonzero(np.diff(cring)) + 1
    starts = np.concatenate([[0], cuts])
    nxt_xy = np.roll(xy, -1, axis=0)
    seg_end = np.append(cuts, xy.shape[0]) - 1
    nxt_xy[seg_end] = xy[starts]
    cross = xy[:, 0] * nxt_xy[:, 1] - nxt_xy[:, 0] * xy[:, 1]
    area = 0.5 * np.add.reduceat(cross, starts)
    owner = obj[seq][corner][starts]
    out: dict[int, list[list[np.ndarray]]] = {}
    by_obj: dict[int, tuple[list, list]] = {}
    for k, (a, b) in enumerate(zip(starts, np.append(cuts, xy.shape[0]), strict=True)):
        pts = np.vstack([xy[a:b], xy[a : a + 1]])
        ext, holes = by_obj.setdefault(int(owner[k]), ([], []))
        (ext if area[k] > 0 else holes).append(pts)
    for row, (ext, holes) in by_obj.items():
        polys = [[e] for e in ext]
        for hole in holes:
            j = 0
            if len(ext) > 1:
                # A point just left of the hole's first edge lies in the hole (the object is
                # on the right of every edge).
                (x0, y0), (x1, y1) = hole[0], hole[1]
                d = np.array([x1 - x0, y1 - y0]) / max(abs(x1 - x0) + abs(y1 - y0), 1e-9)
                probe = (hole[0] + hole[1]) / 2 + 0.25 * np.array([d[1], -d[0]])
                owners = [i for i, e in enumerate(ext) if _inside(probe, e)]
                j = min(owners, key=lambda i: abs(_signed_area(ext[i]))) if owners else 0
            polys[j].append(hole)
        out[int(ids[row])] = polys
    return out


def outline_polygons(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> list[list[np.ndarray]]:
    """The polygons of one 2D boolean mask (see pixel_outlines); ``origin`` = (row, col) of the
    mask's first pixel in the image."""
    polys = pixel_outlines(np.asarray(mask, dtype=np.int32), np.array([1])).get(1, [])
    shift = np.array([origin[1], origin[0]], dtype=np.float64)
    return [[ring + shift for ring in poly] for poly in polys]


def _geometry(polys: list[list[np.ndarray]]) -> dict:
    coords = [[r.astype(np.int64).tolist() for r in poly] for poly in polys]
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
    predictions: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ObjectsExport:
    """``out_dir/<image>.geojson`` per image: a FeatureCollection of QuPath detections, one per
    object: its outline, ``classification`` (final class and colour), ``measurements`` (object
    id, confidence, p_<class>, every measurement) and ``name`` (the object id). 2D images only.
    ``predictions``: see ``tables.load_results`` (default: the saved ones)."""
    from svetlana.core.io.fileio import atomic_write_text
    from svetlana.core.objects.measurement_cache import project_measurements
    from svetlana.core.usecases.export_table import _check_images, _check_out, load_results

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
    results = load_results(project, names, model_id, predictions, progress=progress, cancel=cancel)
    documents = []
    total = 0
    for k, name in enumerate(names):
        if cancel is not None:
            cancel.raise_if_cancelled()
        m = project_measurements(project, name, cancel=cancel)
        loaded = project.load(name)
        table = loaded.table
        r = results.images[name]
        if progress is not None:
            frac = k / len(names)
            progress(Progress("export", int(frac * 1000), 1000, f"outlining {name}"))
        outlines = pixel_outlines(loaded.labels, table.ids)
        # Text built per feature: the measurements through one C-level format per object
        # (json.dumps of ~100 floats per object is the slow part otherwise).
        fmt = ",".join(f"{json.dumps(n)}:%.7g" for n in m.names)
        features = []
        for i, obj in enumerate(table.ids):
            polys = outlines.get(int(obj))
            if not polys:
                continue
            head = [f'"object":{int(obj)}']
            if results.model_id and np.isfinite(r.confidence[i]):
                head.append(f'"confidence":{float(r.confidence[i]):.5g}')
                for c, pv in zip(results.model_classes, r.probs[i], strict=True):
                    if np.isfinite(pv):
                        head.append(f"{json.dumps(f'p_{c}')}:{float(pv):.5g}")
            meas = ",".join(head) + "," + fmt % tuple(m.values[i].tolist())
            props = f'"objectType":"detection","name":"{int(obj)}","isLocked":false'
            if r.final[i]:
                cls = {
                    "name": str(r.final[i]),
                    "color": _rgb(results.colours.get(str(r.final[i]), "#ffffff")),
                }
                props += f',"classification":{json.dumps(cls)}'
            geometry = json.dumps(_geometry(polys), separators=(",", ":"))
            features.append(
                f'{{"type":"Feature","geometry":{geometry},'
                f'"properties":{{{props},"measurements":{{{meas}}}}}}}'
            )
        total += len(features)
        documents.append(
            (name, '{"type":"FeatureCollection","features":[\n' + ",\n".join(features) + "\n]}\n")
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    stems = output_stems(name for name, _ in documents)  # `a b` and `a_b`: two files
    for name, text in documents:
        path = out_dir / f"{stems[name]}.geojson"
        atomic_write_text(path, text)
        files.append(path)
    if progress is not None:
        progress(Progress("export", 1000, 1000, f"wrote {len(files)} GeoJSON file(s)"))
    return ObjectsExport(tuple(files), total, results.model_id, results.note)
