"""Class names are checked where they enter (init, import, the GUI editor) with a clear message."""

from __future__ import annotations

import re

import pytest

from svetlana.core.annotations.store import Annotations, validate_class_name
from svetlana.core.errors import InputError
from svetlana.core.project.bundle import Project
from tests.conftest import run_cli

BAD = {
    "": "empty",
    "   ": "empty",
    "a\tb": "tab",
    "a\rb": "carriage return",
    "a\nb": "line break",
    " infected": "space",
    "infected ": "space",
    "x" * 61: "at most 60",
    "evil\u202egnp": "U+202E",
    "a,b": "commas",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_class_names_are_refused_with_the_reason(name):
    with pytest.raises(InputError, match=re.escape(BAD[name])):
        validate_class_name(name)
    with pytest.raises(InputError):
        Annotations().add_class(name)


@pytest.mark.parametrize("name", ["=1+2", "+cmd|' /C calc'!A0", "@home", "-", "x" * 60, "Zelle ü"])
def test_formula_looking_and_unicode_names_are_allowed(name):
    assert validate_class_name(name) == name


def test_rename_to_a_bad_name_is_refused():
    store = Annotations()
    store.add_class("a")
    with pytest.raises(InputError, match="tab"):
        store.update_class("a", new_name="b\tc")
    assert store.class_names == ("a",)


def test_a_bad_class_name_creates_nothing(tmp_path):
    bundle = tmp_path / "p.svetlana"
    with pytest.raises(InputError, match="tab"):
        Project.create(bundle, ["good", "bad\tname"])
    assert not bundle.exists()
    code, _, err = run_cli("init", bundle, "--classes", "ok, bad\u202ename")
    assert code == 1 and "U+202E" in err and not bundle.exists()


def test_import_refuses_a_bad_class_name_before_any_change(tmp_path):
    from tests.robustness.helpers import make_bundle, snapshot

    bundle = make_bundle(tmp_path)
    before = snapshot(bundle)
    csv_path = tmp_path / "l.csv"
    csv_path.write_text('image,object,class\ncells,10,"two\nlines"\n')
    code, _, err = run_cli("import-labels", bundle, csv_path, "--add-classes")
    assert code == 1 and "line break" in err and str(csv_path) in err
    assert snapshot(bundle) == before
