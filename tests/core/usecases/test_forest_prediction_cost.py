"""A folder image predicted with a forest is measured once, as every object of its mask (as the
project's measurement cache is), not as a subset whose context sums the whole mask again."""

from __future__ import annotations

from pathlib import Path

from tests.cli.folder_helpers import trained_bundle
from tests.conftest import blobs, write_pair


def _folder_predictor(tmp_path):
    """A trained forest and a folder of one pair: ``predict(out)`` predicts it into ``out``."""
    from svetlana.core.usecases import batch

    bundle = trained_bundle(tmp_path)
    write_pair(tmp_path / "plate", "well", *blobs(n=12, seed=5))
    (model,) = [p for p in (Path(bundle) / "models").iterdir() if p.is_dir()]

    def predict(out: str):
        (task,) = batch.plan_folder(model, tmp_path / "plate", tmp_path / out, device="cpu")
        result = batch.predict_pair(task)
        assert result.ok, result.error
        return result

    return predict


def test_a_folder_image_is_not_summed_twice_and_predicts_the_same(tmp_path, monkeypatch):
    from svetlana.core.objects import families

    predict = _folder_predictor(tmp_path)
    first = predict("a")

    def second_pass(*args, **kwargs):
        raise AssertionError("the whole mask was summed again for the context columns")

    monkeypatch.setattr(families, "object_sums", second_pass)
    assert predict("b").counts == first.counts


def test_a_forest_is_given_its_columns_a_block_of_objects_at_a_time(tmp_path, monkeypatch):
    """A whole slide's 416,025 objects x 200 columns are never copied whole (0.33 GB): the
    model's columns are taken a block at a time, with the same predictions."""
    from svetlana.core.ml import forest
    from svetlana.core.usecases import predict as predicting

    predict = _folder_predictor(tmp_path)
    whole = predict("whole")

    rows_given: list[int] = []
    select = forest.select_features

    def spy(names, values, *args, **kwargs):
        rows_given.append(len(values))
        return select(names, values, *args, **kwargs)

    monkeypatch.setattr(forest, "select_features", spy)
    monkeypatch.setattr(predicting, "_FEATURE_BLOCK", 5)
    blocks = predict("blocks")
    assert rows_given and max(rows_given) <= 5 and sum(rows_given) >= 12
    assert blocks.counts == whole.counts
    made = sorted((tmp_path / "whole").rglob("*.*"))
    assert {p.suffix for p in made} >= {".csv", ".tif"}
    for a in made:
        if a.suffix in (".csv", ".tif"):  # the rows (probabilities) and the class mask
            b = tmp_path / "blocks" / a.relative_to(tmp_path / "whole")
            assert b.read_bytes() == a.read_bytes(), a.name
