"""The label file formats: journal records (one line per change, or a checked batch) and the
labels CSV reader."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from pathlib import Path

from svetlana.core.errors import InputError
from svetlana.core.io.csvsafe import restore

log = logging.getLogger(__name__)

SOURCES = ("manual", "correction", "import")


def _records_text(records: list) -> str:
    # Deterministic for records parsed back from it (json keeps key order), so the replay
    # recomputes exactly the digest that was written.
    return json.dumps(records, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def batch_line(records: list[dict]) -> str:
    """One journal line carrying several changes, with their count and SHA-256."""
    text = _records_text(records)
    head = json.dumps({"op": "batch", "n": len(records), "sha256": _digest(text)})
    return head[:-1] + ',"records":' + text + "}"


def checked_batch(r: dict) -> list:
    records = r["records"]
    if not isinstance(records, list) or r.get("n") != len(records):
        raise ValueError("batch length does not match")
    if r.get("sha256") != _digest(_records_text(records)):
        raise ValueError("batch checksum does not match")
    return records


CLASS_OPS = ("add_class", "update_class", "remove_class")
CLASS_FIELDS = ("name", "colour", "key")


def checked_label_record(r: dict) -> dict:
    """A label record with sound types and values, else TypeError/ValueError saying why."""
    image, obj = r["image"], r["object"]
    if not isinstance(image, str) or not image or len(image) > 200:
        raise ValueError("bad image name")
    if isinstance(obj, bool) or not isinstance(obj, int) or not 0 <= obj < 2**63:
        raise ValueError(f"bad object id {obj!r}")
    if r["class"] is not None and not isinstance(r["class"], str):
        raise TypeError("bad class")
    source = r.get("source") or "manual"
    if source not in SOURCES:
        raise ValueError(f"unknown label source {source!r}")
    if not isinstance(r.get("time") or "", str):
        raise TypeError("bad time")
    return {**r, "object": obj, "source": source, "time": str(r.get("time") or "")}


def checked_class_record(r: dict, validate_name) -> dict:
    """A class record with sound types and values (``validate_name`` checks a class name,
    raising InputError), else TypeError/ValueError saying why: a tampered record replayed
    would leave a class no command can read (an empty name)."""
    op = r.get("op")
    if op not in CLASS_OPS or not isinstance(r.get("name"), str):
        raise TypeError(f"bad class record (op {op!r})")
    try:
        if op == "add_class":
            validate_name(r["name"])
        changes = r.get("changes", {})
        if not isinstance(changes, dict) or set(changes) - set(CLASS_FIELDS):
            raise TypeError("bad class changes")
        if "name" in changes:
            validate_name(changes["name"])
    except InputError as exc:
        raise ValueError(exc.message) from None
    for field in ("colour", "key"):
        for where in (r, changes):
            if field in where and not isinstance(where[field], str):
                raise TypeError(f"bad class {field}")
    for where in (r, changes):
        if len(where.get("key", "")) > 8:
            raise ValueError("bad class key")
    if "index" in r:
        index = r["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10**6:
            raise ValueError(f"bad class index {index!r}")
    return r


MAX_CSV = 4 << 30  # a labels CSV of tens of millions of rows; larger is refused unread


def read_label_csv(
    path: Path, error: type[Exception] = InputError, *, follow: bool = True
) -> list[dict]:
    """Read a labels CSV (header image,object,class[,source]); BOM, blank lines and spaces
    tolerated. Only a regular file is read (a FIFO or ``/dev/zero`` would never end); with
    ``follow=False`` (a bundle's own CSV) a link is refused."""
    from svetlana.core.io.fileio import read_regular_bytes

    raw = read_regular_bytes(path, MAX_CSV, follow=follow, error=error)
    return parse_label_csv(raw, path, error)


def parse_label_csv(raw: bytes, path: Path, error: type[Exception] = InputError) -> list[dict]:
    """The rows of a labels CSV's bytes (see :func:`read_label_csv`)."""
    # Excel's "Unicode text" is UTF-16 with a BOM (and tab separated).
    encodings = ("utf-16",) if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "cp1252")
    for enc in encodings:
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1252 decodes almost anything
        raise error("not a text file", path)
    if "\x00" in text:
        raise error("not a text CSV file", path)
    sample = text[:4096]
    first = sample.splitlines()[0] if sample.strip() else ""
    delimiter = max((",", ";", "\t"), key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [[restore(c.strip()) for c in r] for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise error(f"not a readable CSV (line {reader.line_num}: {exc})", path) from None
    if not rows:
        raise error("the CSV is empty (expected a header image,object,class)", path)
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("image", "object", "class") if c not in header]
    if missing:
        raise error(
            f"the CSV header must contain image,object,class (missing: {', '.join(missing)})", path
        )
    idx = {h: header.index(h) for h in ("image", "object", "class")}
    src = header.index("source") if "source" in header else None
    when = header.index("time") if "time" in header else None
    out = []
    for line_no, r in enumerate(rows[1:], start=2):
        if len(r) < len(header) and len(r) <= max(idx.values()):
            raise error(f"line {line_no}: expected {len(header)} columns, found {len(r)}", path)
        obj = r[idx["object"]].strip()
        try:
            obj_id = (
                int(float(obj))
                if obj.replace(".", "", 1).isdigit() and float(obj).is_integer()
                else int(obj)
            )
        except (ValueError, OverflowError):
            raise error(f"line {line_no}: object {obj!r} is not an integer id", path) from None
        if not 0 <= obj_id < 2**63:
            raise error(f"line {line_no}: object id {obj} is out of range", path)
        cls = r[idx["class"]].strip()
        if not cls:
            raise error(f"line {line_no}: empty class", path)
        row = {"image": r[idx["image"]].strip(), "object": obj_id, "class": cls}
        if src is not None and src < len(r):
            s = r[src].strip()
            row["source"] = s if s in SOURCES else "import"
        if when is not None and when < len(r):
            row["time"] = r[when].strip()
        out.append(row)
    return out
