"""Write a network as an ONNX file: a graph of standard operators that runs without Svetlana.

ONNX is the exchange format out of Svetlana (``export-model``, the bioimage.io package): the
file holds operators and weights, no Python, and any ONNX runtime can execute it. It is written
with torch's ``torch.export``-based exporter (``torch.onnx.export(dynamo=True)``, which needs
the ``onnxscript`` package); the older TorchScript-based exporter is deprecated in the pinned
torch. Svetlana itself never loads ONNX or TorchScript files back: models are imported as
weights only (``models.load_user_network``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from svetlana.core.errors import ModelError
from svetlana.core.io.fileio import atomic_write_bytes
from svetlana.core.ml._torch import load_torch

log = logging.getLogger(__name__)

INPUT_NAME = "patches"
OUTPUT_NAME = "logits"
OPSET = 20  # supported by onnxruntime >= 1.17 and every current ONNX runtime


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter logs optional-package notices (torchvision...) and deprecation warnings of
    # its own internals: noise for a user, who gets one line on failure instead.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _strip_debug_info(proto) -> None:
    """Remove what the exporter records for debugging on every node, graph and function (it
    cannot be told not to): the Python stack of each operator, with the absolute paths of
    Svetlana's and torch's source files on the exporting machine, the module names and the
    FX graph text. A file a user shares must not tell where (and as whom) it was made; the
    operators, weights and input/output names are untouched."""

    def clear(graph) -> None:
        del graph.metadata_props[:]
        graph.doc_string = ""
        for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
            del value.metadata_props[:]
            value.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                if attr.HasField("g"):
                    clear(attr.g)
                for sub in attr.graphs:
                    clear(sub)

    clear(proto.graph)
    for function in proto.functions:
        del function.metadata_props[:]
        function.doc_string = ""
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""
    proto.doc_string = ""


def export_onnx(model, example_input: np.ndarray, path: str | Path) -> Path:
    """Write ``model`` (a ``torch.nn.Module``) as ONNX to ``path``, atomically.

    ``example_input`` is one batch ``(N, C, [Z,] Y, X)`` float32 of the shape the network takes;
    the batch size is left free in the file (input ``patches``, output ``logits``). The model is
    exported in eval mode on the CPU (BatchNorm uses its running statistics); its own mode and
    device are restored. The exporter's debugging records (source paths, stack traces) are
    removed; the file is checked with ``onnx.checker`` before it replaces ``path``.
    """
    torch = load_torch("fx")
    try:
        import onnx
        import onnxscript  # noqa: F401 - the exporter's dependency: fail early with a clear message
    except ImportError as exc:
        raise ModelError(
            f"cannot export to ONNX: the {exc.name} package is missing",
            hint="reinstall Svetlana (pip install svetlana) to get onnx and onnxscript",
        ) from exc

    path = Path(path)
    x = np.ascontiguousarray(example_input, dtype=np.float32)
    if x.ndim not in (4, 5):
        raise ModelError(f"the example input must be (N, C, [Z,] Y, X), not shape {x.shape}")
    if x.shape[0] < 2:  # a batch of 1 would let the exporter fix the batch size to 1
        x = np.concatenate([x, x], axis=0)
    example = torch.from_numpy(x)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.cpu().eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=OPSET,
                external_data=False,
                verbose=False,
            )
            proto = program.model_proto
        _strip_debug_info(proto)
        onnx.checker.check_model(proto, full_check=True)
        data = proto.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; one clear message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot export the network to ONNX: {reason}") from exc
    finally:
        model.to(device)
        model.train(was_training)
    atomic_write_bytes(path, data)
    log.info("wrote %s (%d bytes, opset %d)", path, len(data), OPSET)
    return path
