"""Write a network model as a bioimage.io model package (rdf.yaml + ONNX weights + tests).

The bioimage.io Model Zoo format (spec 0.5) is what ilastik, deepImageJ, QuPath's extensions
and ``bioimageio.core`` read. The package holds: ``rdf.yaml`` (the description), ``model.onnx``
(operators and weights, no code), ``test_input.npy`` / ``test_output.npy`` (real patches of the
project and the probabilities the ONNX file gives for them), ``cover.png`` (those patches with
their class), ``README.md`` (how patches are made and normalised, and a "Validation" section)
and a ``.zip`` of all of them. Only networks are packaged: a forest on measurements is refused
with the formats that do exist for it. Svetlana needs neither ``bioimageio.spec`` nor
``bioimageio.core`` to write a package; its tests validate one with them.

~480 lines: one package writer (rdf.yaml fields, ONNX weights, test tensors from real
patches, cover, README) whose parts must agree with each other.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError, ModelError, ProjectError
from svetlana.core.io.fileio import atomic_folder, atomic_write_bytes
from svetlana.core.project.bundle import Project, now_iso

log = logging.getLogger(__name__)

FORMAT_VERSION = "0.5.4"  # understood by bioimageio.core >= 0.7 and by the current consumers
RDF_FILE = "rdf.yaml"
ONNX_FILE = "model.onnx"
TEST_INPUT = "test_input.npy"
TEST_OUTPUT = "test_output.npy"
COVER_FILE = "cover.png"
README_FILE = "README.md"
INPUT_ID = "patches"
OUTPUT_ID = "probabilities"
MASK_CHANNEL = "object_mask"
PACKAGE_FILES = (RDF_FILE, ONNX_FILE, TEST_INPUT, TEST_OUTPUT, COVER_FILE, README_FILE)
DEFAULT_AUTHOR = "Svetlana user"
DEFAULT_LICENSE = "CC-BY-4.0"
SVETLANA_CITATION = (
    "Cazorla C., Munier N., Morin R., Weiss P. Svetlana a supervised segmentation classifier "
    "for Napari. Scientific Reports 14 (2024).",
    "10.1038/s41598-024-60916-8",
)
MAX_TEST_PATCHES = 4
_CANDIDATES = 256  # objects of the first image scored to choose the test patches


@dataclass(frozen=True)
class Citation:
    text: str
    doi_or_url: str = ""


@dataclass(frozen=True)
class PackageInfo:
    """What the package says about itself (CLI options, with defaults)."""

    authors: tuple[str, ...] = (DEFAULT_AUTHOR,)
    license: str = DEFAULT_LICENSE
    cite: tuple[Citation, ...] = ()
    name: str = ""
    description: str = ""


@dataclass(frozen=True)
class BioimageioExport:
    model_id: str
    folder: Path  # the package folder (rdf.yaml and its files)
    zip_path: Path
    rdf: Path
    classes: tuple[str, ...]
    test_patches: int


def forest_refusal(model_id: str) -> ModelError:
    return ModelError(
        f"model {model_id!r} is a forest on object measurements: bioimage.io packages hold "
        "networks only. Its formats are the forest file (plain arrays) and card "
        "(svetlana export-model without --format) and the measurement table (svetlana "
        "export-table); train a network (--arch small) for a bioimage.io package"
    )


def hybrid_refusal(model_id: str) -> ModelError:
    return ModelError(
        f"model {model_id!r} is a hybrid (a forest on object measurements and a CNN's "
        "probabilities): bioimage.io packages hold networks only; train a network "
        "(--arch small) for a bioimage.io package"
    )


def _check_replaceable(folder: Path) -> None:
    """A folder already at the package's place is replaced only if it holds a package's files."""
    if not folder.exists():
        return
    if not folder.is_dir() or any(p.name not in PACKAGE_FILES for p in folder.iterdir()):
        raise InputError(
            "already exists and is not a bioimage.io package written by Svetlana; choose another "
            "output folder or package name (nothing was written)",
            folder,
        )


def _package_name(text: str) -> str:
    # The spec allows letters, digits, spaces and _-.(); at most 128 characters.
    name = re.sub(r"[^A-Za-z0-9 _\-().]+", " ", text).strip()
    return re.sub(r"\s+", " ", name)[:128] or "Svetlana classifier"


def _file_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "model"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _run_exported(onnx_path: Path, model, patches: np.ndarray) -> np.ndarray:
    """Logits of the written ONNX file (onnxruntime), or of the network it was made from."""
    try:
        import onnxruntime as ort
    except ImportError:
        log.info("onnxruntime is not installed: test outputs computed with torch")
        from svetlana.core.ml._torch import load_torch

        torch = load_torch("fx")
        with torch.no_grad():
            return model.eval()(torch.from_numpy(patches)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: patches})[0], np.float32)


def _test_patches(project: Project, card: dict, model) -> tuple[np.ndarray, str, np.ndarray]:
    """Real patches of the project: the most confident object of each class among the first
    objects of the first image the model fits (one class per patch where possible)."""
    from svetlana.core.ml.inference import predict_probabilities

    ndim = int(card.get("ndim", len(card["patch_shape"])))
    for name in project.image_names:
        loaded = project.load(name)
        if loaded.labels.ndim != ndim or loaded.image.shape[0] != int(card["channels"]):
            continue
        table = loaded.table
        ids = np.asarray(table.ids)[:_CANDIDATES]
        if len(ids) == 0:
            continue
        patches = np.ascontiguousarray(loaded.patches(ids, int(card["patch_size"])), np.float32)
        probs = predict_probabilities(model, patches, threads=1)
        chosen: list[int] = []
        for k in range(probs.shape[1]):
            order = np.argsort(-probs[:, k])
            best = next((int(i) for i in order if int(i) not in chosen), None)
            if best is not None and len(chosen) < MAX_TEST_PATCHES:
                chosen.append(best)
        return patches[chosen], name, ids[chosen]
    raise ProjectError(
        "no image of the project fits the model (dimensions and channels): "
        "the test patches of a bioimage.io package are real patches of the project",
        project.path,
    )


def _cover_png(patches: np.ndarray, labels: Sequence[str]) -> bytes:
    """The patches side by side, image channels as grey (channel 0), object outlined, class
    name under each; 2:1 as the Model Zoo recommends."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    cell, text_h = 160, 28
    tiles = []
    for p in patches:
        img, mask = p[0], p[-1]
        if img.ndim == 3:  # 3D: the middle plane
            img, mask = img[img.shape[0] // 2], mask[mask.shape[0] // 2]
        grey = (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        edge = (mask > 0) & ~ndimage.binary_erosion(mask > 0)
        rgb[edge] = (255, 200, 0)
        tile = Image.fromarray(rgb).resize((cell, cell), Image.Resampling.NEAREST)
        tiles.append(tile)
    n = len(tiles)
    gap = 12
    width = max(2 * (cell + text_h + 2 * gap), n * (cell + gap) + gap)
    height = width // 2
    canvas = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    x0 = (width - (n * (cell + gap) - gap)) // 2
    y0 = (height - cell - text_h) // 2
    for k, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        x = x0 + k * (cell + gap)
        canvas.paste(tile, (x, y0))
        draw.text((x + 4, y0 + cell + 6), label[:22], fill=(240, 240, 240))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


_DOC = """\
# {name}

Object classifier trained with [Svetlana](https://doi.org/10.1038/s41598-024-60916-8) in the
project `{project}` (model `{model_id}`, {architecture}), exported {created}.
It gives the class of one segmented object from a patch of the image around it.

Classes, in output order: {classes}.

## Input: `patches` ({axes_text})

A batch of patches of {shape_text} pixels{spacing_note}, float32, {in_channels} channels:

- {image_channels_text}: the image around the object's centroid (rounded to the nearest pixel).
  Each channel is normalised **per image**, not per patch: `(x - p1) / (p99.8 - p1)`, clipped
  to `[-1, 5]`, where `p1` and `p99.8` are the 1st and 99.8th percentiles of that channel over
  the whole image (subsampled to about two million pixels on big images). Pixels outside the
  image are 0.
- `{mask}` (last channel): 1 on the pixels of this object in the segmentation mask, 0
  elsewhere (other objects in the patch are 0 too).

Because the normalisation uses the whole image, it is not expressed as a preprocessing step
of the package: make the patches as above (Svetlana does it for every object of an image with
`svetlana predict`), then run the model on them.

## Output: `probabilities` (batch, class)

The network gives one score per class; the package's postprocessing applies a softmax over the
class axis, so each row holds the probability of each class ({classes}). The predicted class is
the one with the highest probability.

## Weights

`model.onnx` (ONNX opset {opset}): standard operators and weights, no code. Svetlana itself
reads models only as weights; it never runs a model program.

## Validation

{metrics}
The test patches (`test_input.npy`) are {n_test} real patches of the image `{test_image}`
(objects {test_ids}); `test_output.npy` holds the probabilities the exported ONNX file gives
for them. `bioimageio test rdf.yaml` checks that the package reproduces them. Validate the
model on your own labelled objects before relying on it: a classifier learns the images,
staining and segmentation it was trained on.

## Use

- Python: `pip install bioimageio.core onnxruntime`, then `bioimageio test rdf.yaml` or
  `bioimageio.core.load_model_description("{zip_name}")`.
- Svetlana: this is a copy of a Svetlana model; for Svetlana itself use
  `svetlana export-model` (weights.pt for `svetlana train --arch`).

## Citation

{citations}
"""


def _metrics_text(card: dict) -> str:
    metrics = card.get("metrics") or {}
    if not isinstance(metrics, dict) or not metrics:
        return "No validation was recorded when this model was trained.\n"
    n_val = int(metrics.get("n_val", 0) or 0)
    if n_val > 0:
        head = f"Measured at training time on {n_val} held-out labelled objects:"
    else:
        head = (
            "Measured at training time on the training objects themselves (no held-out split: "
            "this says nothing about new images):"
        )
    lines = [head, ""]
    for key in ("accuracy", "balanced_accuracy", "n_train", "n_val"):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"- {key}: {value:.4g}")
    return "\n".join(lines) + "\n"


def _yaml(rdf: dict) -> str:
    import yaml

    return yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True, width=100)


def export_bioimageio(
    project: Project,
    out_dir: str | Path,
    model_id: str | None = None,
    info: PackageInfo | None = None,
) -> BioimageioExport:
    """Write the package folder ``OUT/<name>/`` and ``OUT/<name>.zip`` for a network model."""
    from svetlana.core.ml.models import load_checkpoint
    from svetlana.core.ml.onnx_export import OPSET, export_onnx

    info = info or PackageInfo()
    model_id = project.models.resolve(model_id)
    card = project.models.card(model_id)
    from svetlana.core.ml.forest import is_forest
    from svetlana.core.ml.hybrid import is_hybrid

    if is_forest(card):
        raise forest_refusal(model_id)
    if is_hybrid(card):
        raise hybrid_refusal(model_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    model, card = load_checkpoint(project.models.dir(model_id))
    try:
        in_channels = int(card["in_channels"])
        shape = tuple(int(s) for s in card["patch_shape"])
        classes = tuple(str(c) for c in card["classes"])
        card.setdefault("channels", in_channels - 1)
        card.setdefault("patch_size", shape[-1])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError(f"the model card lacks {exc}", project.models.dir(model_id)) from exc

    patches, test_image, test_ids = _test_patches(project, card, model)
    name = _package_name(info.name or f"Svetlana {project.name} {model_id}")
    stem = _file_stem(name)
    folder = out_dir / stem
    _check_replaceable(folder)
    with tempfile.TemporaryDirectory(prefix="svetlana-onnx-") as scratch:
        onnx_path = Path(scratch) / ONNX_FILE
        export_onnx(model, np.zeros((2, in_channels, *shape), np.float32), onnx_path)
        probs = _softmax(_run_exported(onnx_path, model, patches))
        onnx_bytes = onnx_path.read_bytes()

    files: dict[str, bytes] = {
        TEST_INPUT: _npy_bytes(patches),
        TEST_OUTPUT: _npy_bytes(probs),
        COVER_FILE: _cover_png(patches, [classes[int(k)] for k in probs.argmax(axis=1)]),
    }
    spatial = ("z", "y", "x") if len(shape) == 3 else ("y", "x")
    image_channels = [f"channel{c}" for c in range(in_channels - 1)]
    citations = [Citation(*SVETLANA_CITATION), *info.cite]
    created = now_iso()
    spacing_note = ""
    if len(shape) == 3:
        spacing_note = (
            f" ({shape[0]} planes in Z: the patch is {card['patch_size']} px in Y/X, "
            "fewer planes in Z by the voxel spacing)"
        )
    doc = _DOC.format(
        name=name,
        project=project.name,
        model_id=model_id,
        architecture=card.get("architecture", "network"),
        created=created,
        classes=", ".join(classes),
        axes_text="batch, channel, " + ", ".join(spatial),
        shape_text=" x ".join(map(str, shape)),
        spacing_note=spacing_note,
        in_channels=in_channels,
        image_channels_text=", ".join(f"`{c}`" for c in image_channels),
        mask=MASK_CHANNEL,
        opset=OPSET,
        metrics=_metrics_text(card),
        n_test=len(patches),
        test_image=test_image,
        test_ids=", ".join(map(str, test_ids.tolist())),
        zip_name=f"{stem}.zip",
        citations="\n".join(
            f"- {c.text}" + (f" ({c.doi_or_url})" if c.doi_or_url else "") for c in citations
        ),
    )
    files[README_FILE] = doc.encode()

    def cite_entry(c: Citation) -> dict:
        entry: dict = {"text": c.text}
        ref = c.doi_or_url.strip()
        if ref.startswith(("http://", "https://")):
            entry["url"] = ref
        elif ref:
            entry["doi"] = ref.removeprefix("doi:").removeprefix("https://doi.org/")
        return entry

    rdf = {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": info.description
        or (
            f"Classifies segmented objects into {', '.join(classes)} from a patch around each "
            f"object ({len(shape)}D, {in_channels - 1} image channel(s) + the object mask)."
        ),
        "authors": [{"name": a} for a in info.authors],
        "cite": [cite_entry(c) for c in citations],
        "license": info.license,
        "documentation": README_FILE,
        "covers": [COVER_FILE],
        "tags": [
            "svetlana",
            "classification",
            "object-classification",
            f"{len(shape)}d",
            "onnx",
            "fluorescence-light-microscopy",
        ],
        "version": "0.1.0",
        "timestamp": created,
        "inputs": [
            {
                "id": INPUT_ID,
                "description": "patches around objects: normalised image channels + the object mask",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": [*image_channels, MASK_CHANNEL]},
                    *(
                        {"type": "space", "id": a, "size": s}
                        for a, s in zip(spatial, shape, strict=True)
                    ),
                ],
                "test_tensor": {"source": TEST_INPUT, "sha256": _sha256(files[TEST_INPUT])},
                "data": {"type": "float32"},
            }
        ],
        "outputs": [
            {
                "id": OUTPUT_ID,
                "description": "probability of each class",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": list(classes)},
                ],
                "test_tensor": {"source": TEST_OUTPUT, "sha256": _sha256(files[TEST_OUTPUT])},
                "data": {"type": "float32", "range": [0.0, 1.0]},
                "postprocessing": [{"id": "softmax", "kwargs": {"axis": "channel"}}],
            }
        ],
        "weights": {
            "onnx": {"source": ONNX_FILE, "sha256": _sha256(onnx_bytes), "opset_version": OPSET}
        },
        "config": {
            "svetlana": {
                "project": project.name,
                "model": model_id,
                "patch_size": card.get("patch_size"),
                "patch_shape": list(shape),
                "normalisation": "per image and channel: (x - p1) / (p99.8 - p1), clip [-1, 5]",
            }
        },
    }
    files[RDF_FILE] = _yaml(rdf).encode()
    files[ONNX_FILE] = onnx_bytes
    zip_path = out_dir / f"{stem}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for fname in PACKAGE_FILES:
            z.writestr(fname, files[fname])
    # Written beside the package folder and swapped in whole: a failure (disk full, a crash)
    # leaves the previous package or none, never a half-written one. The zip goes last inside
    # the block, so a failed zip leaves the folder as it was too.
    with atomic_folder(folder) as tmp:
        for fname in PACKAGE_FILES:
            atomic_write_bytes(tmp / fname, files[fname])
        atomic_write_bytes(zip_path, buf.getvalue())
    log.info("wrote the bioimage.io package %s and %s", folder, zip_path)
    return BioimageioExport(
        model_id, folder, zip_path, folder / RDF_FILE, classes, int(len(patches))
    )
