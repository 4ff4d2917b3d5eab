"""`svetlana suggest` and `svetlana check-labels`: the CSV contracts, fallbacks and errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import blobs, run_cli, snapshot, write_pair

N = 30
IDS = [10 + 7 * k for k in range(N)]  # even k bright, odd k dim (conftest.blobs)


def ok(*args) -> tuple[str, str]:
    code, out, err = run_cli("-q", *args)
    assert code == 0, err
    return out, err


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def label(bundle: Path, tmp_path: Path, pairs: dict[int, str]) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("image,object,class\n" + "".join(f"cells,{o},{c}\n" for o, c in pairs.items()))
    ok("import-labels", bundle, f)


@pytest.fixture
def bundle(tmp_path) -> Path:
    b = tmp_path / "p.svetlana"
    ok("init", b, "--classes", "bright,dim")
    image, labels = blobs(shape=(160, 160), n=N, seed=0)
    ip, mp = write_pair(tmp_path / "in", "cells", image, labels)
    ok("add", b, ip, mp)
    return b


def truth(obj: int) -> str:
    return "bright" if IDS.index(obj) % 2 == 0 else "dim"


def test_suggest_without_labels_is_the_unbiased_random_order(bundle):
    from svetlana.core.objects.sampling import random_order
    from svetlana.core.project.bundle import Project

    out, _ = ok("suggest", bundle, "-n", "8")
    got = rows(out)
    assert list(got[0]) == ["image", "object"]
    with Project.open(bundle, readonly=True) as p:
        expected = random_order(p.sampling_seed, "cells", np.array(IDS))[:8]
    assert [int(r["object"]) for r in got] == expected.tolist()
    assert {r["image"] for r in got} == {"cells"}
    code, out2, err = run_cli("suggest", bundle, "-n", "8")  # the same order again, with a note
    assert code == 0 and out2 == out and "random order" in err


def test_suggest_with_one_class_labelled_stays_random_and_skips_labelled(bundle, tmp_path):
    first = [int(r["object"]) for r in rows(ok("suggest", bundle, "-n", str(N))[0])]
    assert sorted(first) == IDS  # every object once
    labelled = {o: "bright" for o in first[:3]}
    label(bundle, tmp_path, labelled)
    after = [int(r["object"]) for r in rows(ok("suggest", bundle, "-n", str(N))[0])]
    assert after == [o for o in first if o not in labelled]


def test_suggest_with_a_model_never_repeats_a_label_and_respects_n(bundle, tmp_path):
    labelled = {o: truth(o) for o in IDS[:6]}
    label(bundle, tmp_path, labelled)
    code, out, err = run_cli("suggest", bundle, "-n", "10")
    assert code == 0, err
    got = [int(r["object"]) for r in rows(out)]
    assert len(got) == 10 and len(set(got)) == 10
    assert not set(got) & set(labelled) and set(got) <= set(IDS)
    assert "random order" not in err
    # More than there are unlabelled objects: all of them, once.
    got = [int(r["object"]) for r in rows(ok("suggest", bundle, "-n", "1000")[0])]
    assert sorted(got) == sorted(set(IDS) - set(labelled))


def test_suggest_and_check_refuse_bad_input_and_write_nothing(bundle, tmp_path):
    empty = tmp_path / "empty.svetlana"
    ok("init", empty, "--classes", "a,b")
    for b, args, words in (
        (empty, ("suggest",), "no images"),
        (empty, ("check-labels",), "no images"),
        (bundle, ("suggest", "-n", "0"), "-n"),
        (bundle, ("suggest", "--image", "nope"), "nope"),
        (bundle, ("check-labels",), "two classes"),
        (bundle, ("check-labels", "--out", tmp_path / "no" / "x.csv"), "--out"),
    ):
        before = snapshot(b)
        code, out, err = run_cli(args[0], b, *args[1:])
        assert code == 1 and words in err and out == "", (args, err)
        assert "Traceback" not in err
        assert snapshot(b) == before
    assert not (tmp_path / "no").exists()


def test_check_labels_lists_the_flipped_labels_first(bundle, tmp_path):
    labels = {o: truth(o) for o in IDS}
    flipped = [IDS[4], IDS[9]]
    for o in flipped:
        labels[o] = "dim" if labels[o] == "bright" else "bright"
    label(bundle, tmp_path, labels)
    out_csv = tmp_path / "suspects.csv"
    out, _ = ok("check-labels", bundle, "--out", out_csv)
    assert "judged likely wrong" in out
    got = rows(out_csv.read_text())
    assert list(got[0]) == ["image", "object", "label", "suggested", "score"]
    assert {int(r["object"]) for r in got[:2]} == set(flipped)
    for r in got[:2]:
        assert r["suggested"] == truth(int(r["object"])) != r["label"]
    scores = [float(r["score"]) for r in got]
    assert scores == sorted(scores, reverse=True)


def test_check_labels_of_right_labels_is_an_empty_list(bundle, tmp_path):
    label(bundle, tmp_path, {o: truth(o) for o in IDS})
    out, _ = ok("check-labels", bundle)
    assert out == "image,object,label,suggested,score\n"


def test_check_labels_does_not_judge_classes_with_too_few_labels(bundle, tmp_path):
    labels = {o: truth(o) for o in IDS if truth(o) == "bright"}
    labels.update({o: "dim" for o in [o for o in IDS if truth(o) == "dim"][:2]})
    label(bundle, tmp_path, labels)
    code, out, err = run_cli("check-labels", bundle)
    assert code == 0, err
    assert all(r["label"] != "dim" for r in rows(out))
    assert "not judged" in err and "dim" in err
