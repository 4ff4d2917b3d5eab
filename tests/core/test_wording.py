"""Texts built from numbers: plurals, sizes with units, accuracy with its uncertainty."""

from __future__ import annotations

import pytest

from svetlana.core.wording import (
    accuracy_estimate,
    nice_length,
    object_size,
    plural,
    wilson_interval,
)


def test_plural_agrees_with_the_count():
    assert plural(1, "label") == "1 label"
    assert plural(0, "label") == "0 labels"
    assert plural(2, "thread") == "2 threads"
    assert plural(1, "class") == "1 class"
    assert plural(3, "class") == "3 classes"
    assert plural(2, "image", "pictures") == "2 pictures"


def test_object_size_uses_physical_units_only_when_the_spacing_is_known():
    assert object_size(400, 2, (0.5, 0.5)) == "100 µm²"
    assert object_size(1000, 3, (2.0, 0.5, 0.5)) == "500 µm³"
    assert object_size(1234, 2, None) == "1,234 px"
    assert object_size(27, 3, None) == "27 voxels"
    assert object_size(3, 2, (0.1, 0.1)) == "0.0300 µm²"


def test_nice_length_is_a_round_number_not_above_the_target():
    for target in (0.37, 3.7, 37, 370, 1, 99, 100.5):
        v = nice_length(target)
        assert v <= target
        mantissa = v / 10 ** int(f"{v:e}".split("e")[1])
        assert round(mantissa, 6) in (1.0, 2.0, 5.0)
        assert v > target / 2.6  # never much shorter than asked


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(5, 7)
    assert low == pytest.approx(0.359, abs=0.002) and high == pytest.approx(0.918, abs=0.002)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73  # 100 % on 10 is not certainty
    from scipy.stats import binomtest

    for k, n in ((0, 5), (3, 4), (17, 40), (399, 400), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_accuracy_estimate_names_the_objects_and_the_uncertainty():
    text = accuracy_estimate({"accuracy": 5 / 7, "n_val": 7})
    assert text == "accuracy 71 % on 7 validation objects (95 % interval 36–92 %)"
    one = accuracy_estimate({"accuracy": 1.0, "n_val": 1})
    assert "on 1 validation object " in one
    many = accuracy_estimate({"accuracy": 0.9, "n_val": 1000})
    assert "88–92 %" in many  # more objects, a narrower interval
    none = accuracy_estimate({"accuracy": 1.0, "n_val": 0, "n_train": 30})
    assert "30 training objects" in none and "not an estimate" in none


@pytest.mark.parametrize(("ndim", "channels", "stains"), [(2, 3, True), (3, 2, False)])
def test_every_measurement_has_its_own_words(ndim, channels, stains):
    """Every column of a table (2D RGB with its stains, 3D) is worded, and no two alike: the
    card's "Decides by" never shows a column name nor confuses two measurements."""
    from svetlana.core.ml.column_words import measurement_words
    from svetlana.core.objects.measurements import column_names

    names, _ = column_names(ndim, channels, stains=stains)
    words = [measurement_words(n) for n in names]
    assert len(set(words)) == len(names)
    assert all("_" not in w for w in words)


def test_measurement_words_say_the_channel_scale_and_the_neighbours():
    from svetlana.core.ml.column_words import measurement_words

    assert measurement_words("ch0_log_s1_mean") == "spot texture of channel 1 (fine scale)"
    assert measurement_words("nb_hema_gauss_s4_std") == (
        "neighbours' mean of smoothed intensity of haematoxylin (coarse scale, its spread over "
        "the object)"
    )
    assert measurement_words("ch1_norm_q05") == "5th percentile intensity of channel 2 (normalised)"
    assert measurement_words("not_a_column") == "not_a_column"  # unknown: its own name
