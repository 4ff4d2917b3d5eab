"""Prediction: probabilities from arrays or lazy sources, uncertainty, class and filtered masks."""

from __future__ import annotations

import numpy as np
import pytest

from svetlana.core.errors import Cancelled
from svetlana.core.io.masks import class_mask, filtered_mask
from svetlana.core.jobs import CancelToken, Progress
from svetlana.core.ml.inference import predict_probabilities, uncertainty


class LazyPatches:
    """A patch source that only materialises the slices asked for."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.requests: list[slice] = []

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item: slice) -> np.ndarray:
        self.requests.append(item)
        return self.data[item]


@pytest.fixture
def model():
    torch = pytest.importorskip("torch")
    from svetlana.core.ml.models import build_model

    torch.manual_seed(0)
    return build_model("minimal", 2, 3, 2).eval()


def test_probabilities_from_lazy_source_equal_array(model) -> None:
    x = np.random.default_rng(0).normal(size=(23, 2, 16, 16)).astype(np.float32)
    events: list[Progress] = []
    direct = predict_probabilities(model, x)
    source = LazyPatches(x)
    lazy = predict_probabilities(model, source, batch_size=5, progress=events.append)
    assert direct.shape == (23, 3) and direct.dtype == np.float32
    np.testing.assert_allclose(direct.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(lazy, direct, rtol=1e-5, atol=1e-6)
    assert len(source.requests) == 5
    assert [e.done for e in events] == [1, 2, 3, 4, 5] and events[0].stage == "predict"
    assert not model.training


def test_batch_threads_give_one_threads_probabilities_in_order(model) -> None:
    # two threads each take whole batches on one torch thread: the same values bit for bit
    x = np.random.default_rng(1).normal(size=(301, 2, 16, 16)).astype(np.float32)
    one = predict_probabilities(model, x, batch_size=7, threads=1)
    events: list[Progress] = []
    two = predict_probabilities(model, LazyPatches(x), batch_size=7, threads=2,
                                progress=events.append)  # fmt: skip
    np.testing.assert_array_equal(two, one)
    assert [e.done for e in events] == list(range(1, 44))


def test_a_batch_threads_error_reaches_the_caller(model) -> None:
    class Broken(LazyPatches):
        def __getitem__(self, item: slice) -> np.ndarray:
            if item.start == 35:
                raise OSError("tile 35 unreadable")
            return super().__getitem__(item)

    x = np.zeros((70, 2, 8, 8), np.float32)
    with pytest.raises(OSError, match="tile 35"):
        predict_probabilities(model, Broken(x), batch_size=5, threads=2)


def test_prediction_can_be_cancelled(model) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        predict_probabilities(model, np.zeros((4, 2, 8, 8), np.float32), cancel=token)


def test_empty_input_gives_empty_probabilities(model) -> None:
    assert predict_probabilities(model, np.zeros((0, 2, 8, 8), np.float32)).shape == (0, 3)


def test_uncertainty_is_normalised_entropy() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    u = uncertainty(probs)
    assert u[0] == pytest.approx(0, abs=1e-6)
    assert u[1] == pytest.approx(1)
    assert 0 < u[2] < 1
    assert uncertainty(np.ones((2, 1))).tolist() == [0, 0]


def test_class_mask_with_non_contiguous_ids() -> None:
    labels = np.array([[0, 5, 5], [900, 0, 7], [7, 3, 3]], dtype=np.uint16)
    out = class_mask(labels, np.array([900, 5, 7]), np.array([2, 1, 2]))
    assert out.dtype == np.uint8
    # object 3 is not in ids: unclassified
    assert out.tolist() == [[0, 1, 1], [2, 0, 2], [2, 0, 0]]


def test_class_mask_with_huge_ids_and_many_classes() -> None:
    big = np.int64(2**40)
    labels = np.array([[0, big], [big + 2, 4]], dtype=np.int64)
    out = class_mask(labels, np.array([big, 4]), np.array([300, 1]))
    assert out.dtype == np.uint16
    assert out.tolist() == [[0, 300], [0, 1]]


def test_class_mask_3d_and_empty_ids() -> None:
    labels = np.zeros((2, 3, 3), np.int32)
    labels[1, 1, 1] = 42
    assert class_mask(labels, np.array([42]), np.array([3]))[1, 1, 1] == 3
    assert not class_mask(labels, np.array([], int), np.array([], int)).any()


def test_filtered_mask_keeps_only_chosen_objects() -> None:
    labels = np.array([[0, 5, 5], [900, 0, 7], [7, 3, 3]], dtype=np.int32)
    out = filtered_mask(labels, {900, 3})
    assert out.dtype == labels.dtype
    assert out.tolist() == [[0, 0, 0], [900, 0, 0], [0, 3, 3]]
    assert filtered_mask(labels, np.array([5])).tolist() == [[0, 5, 5], [0, 0, 0], [0, 0, 0]]


def test_predictions_csv_of_many_objects_is_written_in_little_memory(tmp_path) -> None:
    """A whole-slide image has hundreds of thousands of objects: predictions.csv is written row
    by row: its memory does not grow with the objects (was ~1.8 KB per object); every row is there."""
    import tracemalloc

    from svetlana.core.objects.table import ObjectTable
    from svetlana.core.project.images import LoadedImage
    from svetlana.core.usecases.predict import ImagePrediction, write_prediction_outputs

    n = 20_000
    rng = np.random.default_rng(0)
    lo = rng.integers(0, 4000, (n, 2))
    table = ObjectTable(
        np.arange(1, n + 1, dtype=np.int64), np.concatenate([lo, lo + 9], 1),
        lo + 4.5, np.full(n, 64, np.int64), np.zeros((n, 0)),
    )  # fmt: skip
    probs = rng.dirichlet([1.0, 1.0], n).astype(np.float32)
    pred = ImagePrediction("slide", table, probs, ("a", "b"), uncertainty(probs))
    loaded = LoadedImage(
        "slide", np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), np.uint32), None
    )
    write_prediction_outputs(tmp_path / "warm", [(pred, loaded)], ("a", "b"), lambda im: {})
    tracemalloc.start()  # after a first run: the imports it does are not counted
    try:
        write_prediction_outputs(tmp_path, [(pred, loaded)], ("a", "b"), lambda im: {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 15e6, f"{peak / 1e6:.1f} MB to write {n} rows"
    lines = (tmp_path / "predictions.csv").read_text().splitlines()
    assert len(lines) == n + 1 and lines[-1].startswith(f"slide,{n},")
