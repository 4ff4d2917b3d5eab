"""Architecture registry (default small CNN, the paper's minimal CNN, ResNet-18/34/50; 2D/3D), safe checkpoints."""

from __future__ import annotations

import logging
import os
import pickle  # noqa: TID251 - only to catch UnpicklingError from torch.load(weights_only=True)
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svetlana.core.errors import ModelError, UnsafeFileError
from svetlana.core.io import bundlefs
from svetlana.core.io.fileio import atomic_open, atomic_write_json, open_regular
from svetlana.core.ml._torch import load_torch

log = logging.getLogger(__name__)

ARCHITECTURES: tuple[str, ...] = ("small", "minimal", "resnet18", "resnet34", "resnet50")
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
# What earlier versions stored for a TorchScript network: a program, never loaded any more.
TORCHSCRIPT = "torchscript"
TORCHSCRIPT_FILE = "model.ts"
# Layers a user network may differ in (number of classes) when fine-tuning.
_HEAD_KEYS = ("fc.weight", "fc.bias")
_CONVERT_HINT = (
    f"Svetlana imports only the weights of a {', '.join(ARCHITECTURES)} network: "
    "save them with torch.save(model.state_dict(), path)"
)
_PROGRAM_MESSAGE = (
    "refused: this is a TorchScript program, and Svetlana never runs code from a model file"
)


def build_model(arch: str, in_channels: int, n_classes: int, ndim: int):
    """A fresh, randomly initialised network (``torch.nn.Module``) returning logits."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if ndim not in (2, 3):
        raise ModelError(f"networks are 2D or 3D, not {ndim}D")
    if in_channels < 1 or n_classes < 1:
        raise ModelError(
            f"need at least 1 input channel and 1 class, got {in_channels}/{n_classes}"
        )
    from svetlana.core.ml import _nets

    return _nets.build(arch, int(in_channels), int(n_classes), int(ndim))


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _is_torchscript_archive(f) -> bool:
    """A TorchScript program (a zip with Python ``code/`` and ``constants.pkl``)."""
    try:
        with zipfile.ZipFile(f) as zf:
            return any(
                n.endswith("constants.pkl") or "/code/" in n or n.startswith("code/")
                for n in zf.namelist()
            )
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    finally:
        f.seek(0)


def save_checkpoint(folder: Path, model_or_state_dict, card: dict) -> None:
    """Write ``weights.pt`` (a plain state_dict) then ``card.json``, atomically."""
    torch = load_torch()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model_or_state_dict
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    state = {k: v.detach().cpu().clone() for k, v in state.items()}
    with atomic_open(folder / WEIGHTS_FILE, "wb") as f:
        torch.save(state, f)
    atomic_write_json(folder / CARD_FILE, dict(card))


def _starts_with_pickle(f) -> bool:
    # A raw pickle (protocol >= 2) starts with PROTO; the safe loader rejects its opcodes.
    try:
        f.seek(0)
        return f.read(1) == b"\x80"
    except (OSError, ValueError):
        return False


# The largest weights file read (ResNet-50 3D is ~200 MB); a larger one is refused unread.
MAX_WEIGHTS = bundlefs.MAX_MODEL


def _safe_load(path: Path, f=None) -> Any:
    """``torch.load`` that never runs code from the file. ``f``: the file already opened (and
    checked: a bundle's weights are opened without following a link); else ``path`` is opened
    here, refused when it is not a regular file (a FIFO, ``/dev/zero``) or too large."""
    if f is None:
        with open_regular(path, MAX_WEIGHTS, error=ModelError) as opened:
            return _safe_load(path, opened)
    torch = load_torch()

    if _is_torchscript_archive(f):  # torch.load would hand it to torch.jit.load
        raise UnsafeFileError(_PROGRAM_MESSAGE, path, _CONVERT_HINT)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise for users
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(f, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or _starts_with_pickle(f):
            raise UnsafeFileError(
                "refused: the file can only be loaded by running code from it", path, _CONVERT_HINT
            ) from exc
        raise ModelError("cannot load weights: not a PyTorch weights file", path) from exc
    except FileNotFoundError as exc:
        raise ModelError("cannot load weights: file not found", path) from exc
    except Exception as exc:  # corrupt zip, truncated file, wrong format...
        raise ModelError(f"cannot load weights: {exc}", path) from exc


def load_checkpoint(folder: Path):
    """Load a saved model: ``(model, card dict)``: a network in eval mode on CPU, or a forest.

    Only a state_dict of a registry architecture is loaded; a TorchScript model (stored by an
    earlier version, or put there by someone else) is refused, every time.
    """
    from svetlana.core.ml.cards import check_card

    folder = Path(folder)
    # The folder's entries are opened without following links (it may be a received bundle's).
    card = check_card(
        bundlefs.read_json(folder, CARD_FILE, ModelError), folder / CARD_FILE, need_classes=False
    )
    arch = card.get("architecture")
    if arch == "forest" or card.get("kind") == "forest":  # a forest on measurements (plain arrays)
        from svetlana.core.ml.forest import load_forest

        return load_forest(folder, card), card
    if card.get("kind") == "hybrid" or arch == "hybrid":  # a forest + a CNN (core/ml/hybrid.py)
        from svetlana.core.ml.hybrid import load_hybrid

        return load_hybrid(folder, card), card
    return load_network(folder, card, arch), card


def load_network(folder: Path, card: dict, arch: Any):
    """The network of a model folder (``weights.pt``, a state_dict of registry ``arch``)."""
    folder = Path(folder)
    if arch == TORCHSCRIPT or os.path.lexists(folder / TORCHSCRIPT_FILE):
        raise UnsafeFileError(
            f"{_PROGRAM_MESSAGE} (a model stored by an earlier Svetlana, or replaced)",
            folder,
            "train a new model; the project's labels and other models are unaffected",
        )
    try:
        in_channels, n_classes, ndim = (int(card[k]) for k in ("in_channels", "n_classes", "ndim"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model card lacks a valid {exc}", folder / CARD_FILE) from exc
    if arch not in ARCHITECTURES:
        raise ModelError(
            f"unknown architecture {arch!r} (this Svetlana knows {', '.join(ARCHITECTURES)})",
            folder / CARD_FILE,
        )
    path = folder / WEIGHTS_FILE
    if not os.path.lexists(path):
        raise ModelError("cannot load weights: file not found", path)
    with bundlefs.open_read(folder, WEIGHTS_FILE, MAX_WEIGHTS, ModelError) as f:
        state = _safe_load(path, f)
    model = build_model(arch, in_channels, n_classes, ndim)
    try:
        model.load_state_dict(_as_state_dict(state, path))
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"cannot load weights: they do not fit {arch}: {exc}", path) from exc
    return model.eval()


def _as_state_dict(obj: Any, path: Path) -> dict:
    torch = load_torch()

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):  # common training-script wrappers
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(
            "cannot load weights: the file does not hold a state_dict", path, _CONVERT_HINT
        )
    # Weights saved from nn.DataParallel carry a "module." prefix.
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _shape_map(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_user_network(path: Path, in_channels: int, n_classes: int, ndim: int):
    """A user's network for training: ``(arch_name, model)``.

    Accepts only a ``state_dict`` of one registry architecture, loaded without running code
    (a TorchScript program, a pickle or any other file is refused); a state_dict with another
    number of classes gets a fresh final layer (fine-tuning).
    """
    torch = load_torch()

    path = Path(path)
    if not path.is_file():
        raise ModelError("network file not found", path)
    try:
        loaded = _safe_load(path)
    except ModelError as exc:  # not a weights file at all: say what would work
        raise ModelError(exc.message, path, exc.hint or _CONVERT_HINT) from exc
    state = _as_state_dict(loaded, path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    problems: list[str] = []
    for dims in (ndim, 5 - ndim):
        for arch in ARCHITECTURES:
            with torch.device("meta"):  # shapes only: no memory, no init cost
                ref = _shape_map(build_model(arch, in_channels, n_classes, dims))
            if set(ref) != set(shapes):
                continue
            bad = [k for k in ref if k not in _HEAD_KEYS and ref[k] != shapes[k]]
            if dims != ndim:
                problems.append(f"it is a {dims}D {arch} but the images are {ndim}D")
                continue
            if bad:
                if "conv1.weight" in bad:
                    problems.append(
                        f"it is a {arch} for {shapes['conv1.weight'][1]} input channels; "
                        f"the patches have {in_channels}"
                    )
                else:
                    problems.append(f"it looks like {arch} but {bad[0]} has another shape")
                continue
            head_in = shapes["fc.weight"][1]
            if head_in != ref["fc.weight"][1]:
                problems.append(f"it looks like {arch} but fc.weight has another shape")
                continue
            model = build_model(arch, in_channels, n_classes, ndim)
            if shapes["fc.weight"][0] != n_classes:
                log.info(
                    "%s: %d classes in file, %d wanted; final layer re-initialised",
                    path,
                    shapes["fc.weight"][0],
                    n_classes,
                )
                state = {k: v for k, v in state.items() if k not in _HEAD_KEYS}
                model.load_state_dict(state, strict=False)
            else:
                model.load_state_dict(state)
            return arch, model
    detail = (
        "; ".join(problems)
        if problems
        else (f"its layers match none of {', '.join(ARCHITECTURES)}")
    )
    raise ModelError(f"cannot use this network: {detail}", path, _CONVERT_HINT)
