"""The accuracy `svetlana train` prints is the card's estimate of the model the user gets: with a
linear part averaged into the forest, the blend's (its out-of-bag / out-of-fold estimate, the one
its weight was chosen on), never the forest's alone; `info` shows the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ok, write_pair


def _oblique(seed: int, n_side: int = 10, step: int = 24):
    """Discs of random radius and brightness; class "a" when size and brightness together
    are large (a boundary oblique to both: a line draws it, the trees' steps only approach it)."""
    rng = np.random.default_rng(seed)
    shape = (n_side * step, n_side * step)
    image = rng.normal(100, 20, shape).astype(np.float32)
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rows = []
    for k in range(n_side * n_side):
        cy, cx = (k // n_side) * step + step // 2, (k % n_side) * step + step // 2
        r, b = rng.uniform(3, 9), rng.uniform(40, 400)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        labels[disc] = k + 1
        image[disc] += b
        rows.append((k + 1, "a" if (r - 6) / 3 + (b - 220) / 180 > 0 else "b"))
    return image.astype(np.uint16), labels, rows


@pytest.fixture
def oblique_bundle(tmp_path) -> Path:
    bundle = tmp_path / "p.svetlana"
    ok("init", bundle, "--classes", "a,b")
    image, labels, rows = _oblique(seed=0)
    ok("add", bundle, *write_pair(tmp_path / "in", "cells", image, labels))
    csv = tmp_path / "l.csv"
    csv.write_text("image,object,class\n" + "".join(f"cells,{o},{c}\n" for o, c in rows))
    ok("import-labels", bundle, csv)
    return bundle


def _printed_accuracy(out: str) -> int:
    line = next(s for s in out.splitlines() if s.startswith("trained "))
    return int(re.search(r"accuracy (\d+) %", line).group(1))


@pytest.mark.parametrize("arch", ["forest", "auto"])
def test_the_printed_accuracy_is_the_blends_recorded_in_the_card(oblique_bundle, arch):
    extra = ["--time-budget", "1"] if arch == "auto" else []  # auto: the CNN has no time
    out = ok("train", oblique_bundle, "--arch", arch, *extra)
    model = out.strip().splitlines()[-1]
    card = json.loads((oblique_bundle / "models" / model / "card.json").read_text())
    assert card["kind"] == "forest" and card["selection"]["chosen"] == "forest"
    metrics = card["metrics"]
    # The printed number is the card's estimate of the chosen model, said for what it is.
    assert _printed_accuracy(out) == round(metrics["accuracy"] * 100)
    assert "expected on objects like the labelled ones" in out
    assert metrics["estimate"] == "out-of-bag" and metrics["n_val"] == 100
    # The linear part is kept, and the estimate is the blend's: the balanced accuracy of the
    # weight kept (the card's note lists each weight's), not that of weight 0 (the forest alone).
    weight = card["linear"]["weight"]
    assert 0 < weight <= 1
    by_weight = re.search(r"by weight ([^)]*)\)", card["measurements_chosen"]).group(1)
    scores = {float(w): float(v) for w, v in re.findall(r"([\d.]+): ([\d.]+)", by_weight)}
    assert round(metrics["balanced_accuracy"], 3) == scores[weight]
    assert scores[weight] > scores[0.0]  # so the forest alone would have under-stated it
    # The candidates table says what the forest candidate was: the forest with its linear part.
    assert f"forest + linear model (weight {weight:g})" in out
    info = ok("info", oblique_bundle)
    assert f"accuracy {_printed_accuracy(out)} % expected on objects like the labelled" in info


def test_the_measurements_that_decide_are_printed_in_words(oblique_bundle):
    """`train` names the forest's most important measurements as a biologist reads them
    (README's columns in words), not by their column names."""
    from svetlana.core.ml.column_words import measurement_words

    out = ok("train", oblique_bundle, "--arch", "forest")
    model = out.strip().splitlines()[-1]
    card = json.loads((oblique_bundle / "models" / model / "card.json").read_text())
    line = next(s for s in out.splitlines() if s.startswith("most important measurements: "))
    top = [t["name"] for t in card["importances"][:5]]
    for name in top:
        assert f"{measurement_words(name)}: " in line
        if measurement_words(name) != name:  # e.g. "area" is its own word
            assert name not in line
