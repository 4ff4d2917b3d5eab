"""An exported model.onnx tells nothing about the machine it was made on: torch's exporter
records each operator's Python stack (absolute paths of Svetlana's and torch's source files);
the file a user shares holds operators and weights only, and still gives the network's output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxscript")


def test_the_file_holds_no_install_path_and_gives_the_networks_output(tmp_path):
    import onnxruntime as ort
    import torch

    import svetlana
    from svetlana.core.ml.models import build_model
    from svetlana.core.ml.onnx_export import INPUT_NAME, export_onnx

    torch.manual_seed(0)
    model = build_model("minimal", 2, 3, 2).eval()
    x = np.random.default_rng(0).normal(size=(3, 2, 32, 32)).astype(np.float32)
    path = export_onnx(model, x, tmp_path / "model.onnx")
    data = Path(path).read_bytes()
    places = [Path(svetlana.__file__).parent, Path(torch.__file__).parent, Path.home()]
    for place in places:
        if len(place.parts) > 1:  # a home of "/" says nothing
            assert os.fsencode(place) not in data, place
    assert b'.py"' not in data and b"site-packages" not in data  # no source file at all
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(path)).run(None, {INPUT_NAME: x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
