"""A folder image predicted with a forest is measured once, as every object of its mask (as the
project's measurement cache is), not as a subset whose context sums the whole mask again."""

from __future__ import annotations

from pathlib import Path

from tests.cli.folder_helpers import trained_bundle
from tests.conftest import blobs, write_pair


def test_a_folder_image_is_not_summed_twice_and_predicts_the_same(tmp_path, monkeypatch):
    from svetlana.core.objects import families
    from svetlana.core.usecases import batch

    bundle = trained_bundle(tmp_path)
    write_pair(tmp_path / "plate", "well", *blobs(n=12, seed=5))
    (model,) = [p for p in (Path(bundle) / "models").iterdir() if p.is_dir()]
    (task,) = batch.plan_folder(model, tmp_path / "plate", tmp_path / "a", device="cpu")
    first = batch.predict_pair(task)
    assert first.ok, first.error

    def second_pass(*args, **kwargs):
        raise AssertionError("the whole mask was summed again for the context columns")

    monkeypatch.setattr(families, "object_sums", second_pass)
    (again,) = batch.plan_folder(model, tmp_path / "plate", tmp_path / "b", device="cpu")
    result = batch.predict_pair(again)
    assert result.ok, result.error
    assert result.counts == first.counts
