"""A model for other tools: a network as ONNX + weights + card + README; a forest as its arrays."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana.core.errors import InputError, ProjectError
from svetlana.core.io.fileio import (
    atomic_write_text,
    atomic_write_with,
)
from svetlana.core.project.bundle import Project, now_iso

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
README_FILE = "README.txt"

_README = """\
Svetlana model {model_id}, exported {created}.
Classes, in output order: {classes}

Files
  model.onnx   the network as ONNX (operators and weights, no code): runs in any ONNX runtime
  weights.pt   the same weights as a plain PyTorch state_dict ({architecture}); fine-tune them
               in another project with:  svetlana train OTHER.svetlana --arch weights.pt
  card.json    classes, patch size, normalisation, training settings and metrics

Input "patches": float32 (N, {in_channels}, {shape_text}) = (N, C+1, {axes_text}).
  {image_channels}: the image around the object's centroid (rounded), normalised per
  image and per channel: (x - p1) / (p99.8 - p1), clipped to [-1, 5], where p1 and p99.8
  are the 1st and 99.8th percentiles of that channel over the whole image (subsampled to
  about two million pixels on big images). Pixels outside the image are 0.
  Channel {mask_channel} (last): 1 on the pixels of the object, 0 elsewhere.
  Patch size {patch_size} px{spacing_note}.
Output "logits": (N, {n_classes}); softmax over dim 1 gives the probability of each class.

Run it without Svetlana (pip install onnxruntime numpy):

    import numpy as np, onnxruntime as ort
    session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    patches = np.zeros((1, {in_channels}, {shape_text}), np.float32)  # fill as described above
    logits = session.run(["logits"], {{"patches": patches}})[0]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    classes = {classes_list}
    print(classes[p.argmax(1)[0]], p.max(1)[0])
"""


@dataclass(frozen=True)
class ModelExport:
    model_id: str
    out_dir: Path
    files: tuple[Path, ...]


def export_model(project: Project, out_dir: str | Path, model_id: str | None = None) -> ModelExport:
    """Write ``model.onnx``, ``weights.pt`` (state_dict), ``card.json`` and ``README.txt``.

    The ONNX file runs without Svetlana; the folder is also a model Svetlana loads
    (``models.load_checkpoint``) and ``weights.pt`` a network for ``train --arch``.
    """
    from svetlana.core.ml.hybrid import is_hybrid
    from svetlana.core.ml.models import save_checkpoint
    from svetlana.core.ml.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
    from svetlana.core.usecases.predict import load_model

    model_id = project.models.resolve(model_id)
    if is_hybrid(project.models.card(model_id)):
        raise InputError(
            f"model {model_id!r} is a hybrid (a forest on object measurements and a CNN's "
            "probabilities): it has no single ONNX network to export; predict with it in "
            "Svetlana, or export a forest or a CNN model"
        )
    model, card = load_model(project, model_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the output must be a folder", out_dir)
    from svetlana.core.ml.forest import is_forest

    if is_forest(card):
        return _export_forest(project, model_id, card, out_dir)
    try:
        in_channels = int(card["in_channels"])
        shape = tuple(int(s) for s in card["patch_shape"])
        classes = [str(c) for c in card["classes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError(f"the model card lacks {exc}", project.models.dir(model_id)) from exc
    example = np.zeros((2, in_channels, *shape), np.float32)
    onnx_path = out_dir / ONNX_FILE
    export_onnx(model, example, onnx_path)
    new_card = {
        **card,
        "exported_from": {"project": project.name, "model": model_id, "date": now_iso()},
        "input_layout": "N, C+1, " + ("Z, Y, X" if len(shape) == 3 else "Y, X"),
        "onnx": {"file": ONNX_FILE, "input": INPUT_NAME, "output": OUTPUT_NAME, "opset": OPSET},
    }
    save_checkpoint(out_dir, model, new_card)  # weights.pt, then card.json
    spacing = ""
    if len(shape) == 3:
        spacing = f" in Y/X; {shape[0]} planes in Z (scaled by the voxel spacing)"
    readme = _README.format(
        model_id=model_id,
        created=now_iso(),
        classes=", ".join(classes),
        classes_list=repr(classes),
        architecture=card.get("architecture"),
        in_channels=in_channels,
        shape_text=", ".join(map(str, shape)),
        axes_text="Z, Y, X" if len(shape) == 3 else "Y, X",
        image_channels="Channel 0" if in_channels == 2 else f"Channels 0..{in_channels - 2}",
        mask_channel=in_channels - 1,
        patch_size=card.get("patch_size"),
        spacing_note=spacing,
        n_classes=len(classes),
    )
    atomic_write_text(out_dir / README_FILE, readme)
    files = (onnx_path, out_dir / WEIGHTS_FILE, out_dir / CARD_FILE, out_dir / README_FILE)
    return ModelExport(model_id, out_dir, files)


def _export_forest(project: Project, model_id: str, card: dict, out_dir: Path) -> ModelExport:
    """A forest model folder: ``forest.npz`` (plain arrays; ``forest.skops`` for a model of an
    earlier version) + card + README."""
    from svetlana.core.io.fileio import atomic_write_json
    from svetlana.core.ml.forest import SKOPS_FILE, forest_file

    source = forest_file(project.models.dir(model_id))
    data = source.read_bytes()
    atomic_write_with(out_dir / source.name, lambda p: p.write_bytes(data))
    new_card = {
        **card,
        "exported_from": {"project": project.name, "model": model_id, "date": now_iso()},
    }
    atomic_write_json(out_dir / CARD_FILE, new_card)
    if source.name == SKOPS_FILE:
        how = (
            "forest.skops is a skops file: load it with skops.io.load after checking "
            "skops.io.get_untrusted_types (Svetlana allows only sklearn's forest and tree types).\n"
        )
    else:
        how = (
            "forest.npz holds the trees as plain numpy arrays (numpy.load(..., allow_pickle=False)):"
            " offsets (tree t owns nodes offsets[t]:offsets[t+1]), left/right (child index inside"
            " the tree, -1 at a leaf), feature (the card's measurement a split reads), threshold"
            " (go left when the measurement <= threshold, compared as float32), value (class"
            " fractions per node), classes (index of each column of value in the card's classes),"
            " importances. A class's probability is the mean over trees of the leaf's fraction."
            " When the card has a 'linear' field, linear_* arrays hold a logistic regression:"
            " z = (clip(x, linear_low, linear_high) - linear_centre) / linear_scale, its"
            " probabilities softmax(z @ linear_coef.T + linear_intercept) over linear_classes;"
            " the model's probabilities are (1 - weight) x the forest's + weight x these.\n"
        )
    readme = (
        f"Svetlana forest model {model_id} (exported {now_iso()}).\n\n"
        f"A random forest (scikit-learn) on object measurements; classes: "
        f"{', '.join(map(str, card.get('classes', [])))}.\n"
        + how
        + "card.json lists the measurements it reads, in order, and their importances.\n"
        "In Python: svetlana.core.ml.models.load_checkpoint(this folder) gives (forest, card).\n"
    )
    atomic_write_text(out_dir / README_FILE, readme)
    return ModelExport(
        model_id, out_dir, (out_dir / source.name, out_dir / CARD_FILE, out_dir / README_FILE)
    )
