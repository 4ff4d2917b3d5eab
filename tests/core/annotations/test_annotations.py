"""Labels store: commands, undo, journal replay, CSV parsing."""

from __future__ import annotations

import pytest

from svetlana.core.annotations.commands import (
    AddClass,
    LabelObjects,
    MergeClasses,
    RemoveClass,
    UndoStack,
    UpdateClass,
)
from svetlana.core.annotations.records import read_label_csv
from svetlana.core.annotations.store import Annotations, ClassInfo
from svetlana.core.errors import InputError


def store(tmp_path=None) -> Annotations:
    s = Annotations(journal=None if tmp_path is None else tmp_path / "annotations.journal")
    s.add_class("alive")
    s.add_class("dead")
    return s


def test_classes_get_keys_and_distinct_colours():
    s = store()
    assert [c.key for c in s.classes] == ["1", "2"]
    assert s.classes[0].colour != s.classes[1].colour
    assert s.class_for_key("2") == "dead"
    with pytest.raises(InputError, match="already exists"):
        s.add_class("alive")


def test_label_undo_redo_restores_previous_values():
    s = store()
    stack = UndoStack(s)
    stack.push(LabelObjects("img", [1, 2], "alive"))
    stack.push(LabelObjects("img", [2, 3], "dead"))
    assert s.get("img", 2).class_name == "dead"
    stack.undo()
    assert s.get("img", 2).class_name == "alive"
    assert s.get("img", 3) is None
    stack.undo()
    assert len(s) == 0
    stack.redo()
    stack.redo()
    assert s.counts() == {"alive": 1, "dead": 2}


def test_rename_and_remove_class_are_undoable_and_carry_labels():
    s = store()
    stack = UndoStack(s)
    stack.push(LabelObjects("img", [1], "alive"))
    stack.push(UpdateClass("alive", new_name="live"))
    assert s.get("img", 1).class_name == "live"
    stack.push(RemoveClass("live"))
    assert s.get("img", 1) is None and s.class_names == ("dead",)
    stack.undo()
    assert s.class_names == ("live", "dead") and s.get("img", 1).class_name == "live"
    stack.undo()
    assert s.get("img", 1).class_name == "alive"
    stack.push(AddClass("debris"))
    assert s.class_info("debris").key == "3"


def test_unknown_class_is_refused_and_nothing_changes():
    s = store()
    with pytest.raises(InputError, match="unknown class"):
        s.apply_labels([("img", 1, "alive"), ("img", 2, "zombie")])
    assert len(s) == 0


def test_journal_replay_rebuilds_state_and_skips_a_torn_last_line(tmp_path):
    s = store(tmp_path)
    s.apply_labels([("img", 1, "alive"), ("img", 2, "dead")])
    s.update_class("dead", new_name="gone")
    s.apply_labels([("img", 1, None)])
    with open(tmp_path / "annotations.journal", "a") as f:
        f.write('{"op":"label","image":"img","obj')  # a write cut by a crash
    fresh = Annotations([ClassInfo("alive", "#ff0000", "1"), ClassInfo("dead", "#00ff00", "2")])
    fresh.replay_journal(tmp_path / "annotations.journal")
    assert fresh.class_names == ("alive", "gone")
    assert fresh.get("img", 1) is None
    assert fresh.get("img", 2).class_name == "gone"
    # replaying twice is harmless (compaction can be interrupted at any point)
    fresh.replay_journal(tmp_path / "annotations.journal")
    assert fresh.counts() == {"alive": 0, "gone": 1}


def test_csv_reader_tolerates_bom_blank_lines_semicolons_and_spaces(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_bytes("\ufeffimage;object;class\n\n a ; 3 ; alive \n\na;4.0;dead\n".encode())
    rows = read_label_csv(p)
    assert rows == [
        {"image": "a", "object": 3, "class": "alive"},
        {"image": "a", "object": 4, "class": "dead"},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("img,obj,class\n", "missing: image, object"),
        ("image,object,class\na,x,alive\n", "line 2: object 'x' is not an integer"),
        ("image,object,class\na,3,\n", "line 2: empty class"),
    ],
)
def test_csv_reader_names_the_problem(tmp_path, text, message):
    p = tmp_path / "labels.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_label_csv(p)
    assert str(p) in str(err.value)


def test_csv_reader_accepts_old_mac_line_endings(tmp_path):
    """Found by fuzzing: bare carriage returns used to crash the CSV reader."""
    p = tmp_path / "labels.csv"
    p.write_bytes(b"image,object,class\rcells,10,bright\r\rcells,17,dim\r")
    assert [r["object"] for r in read_label_csv(p)] == [10, 17]


def test_labels_carry_their_time_through_the_journal_and_the_csv(tmp_path):
    journal = tmp_path / "annotations.journal"
    s = Annotations([ClassInfo("a", "#fff", "1"), ClassInfo("b", "#000", "2")], journal=journal)
    s.apply_labels([("im", 1, "a")], source="correction")
    given = s.get("im", 1).time
    assert given.endswith("+00:00") and "T" in given
    replayed = Annotations(s.classes)
    replayed.replay_journal(journal)
    assert replayed.get("im", 1) == s.get("im", 1)
    csv_path = tmp_path / "annotations.csv"
    s.write_csv(csv_path)
    loaded = Annotations(s.classes)
    loaded.load_csv(csv_path)
    assert loaded.get("im", 1).time == given and loaded.get("im", 1).source == "correction"
    # Undo puts back the earlier label with its own time.
    before = s.apply_labels([("im", 1, "b")])
    s.restore(before)
    assert s.get("im", 1).time == given


def test_labels_of_an_older_version_without_times_still_load(tmp_path):
    csv_path = tmp_path / "annotations.csv"
    csv_path.write_text("image,object,class,source\nim,1,a,manual\nim,2,b,correction\n")
    journal = tmp_path / "annotations.journal"
    journal.write_text('{"op":"label","image":"im","object":3,"class":"a","source":"manual"}\n')
    s = Annotations([ClassInfo("a", "#fff", "1"), ClassInfo("b", "#000", "2")])
    s.load_csv(csv_path)
    s.replay_journal(journal)
    assert [(k, lab.class_name, lab.time) for k, lab in s.items()] == [
        (("im", 1), "a", ""),
        (("im", 2), "b", ""),
        (("im", 3), "a", ""),
    ]


def test_merging_a_class_moves_its_labels_and_undoes(tmp_path):
    s = Annotations(
        [ClassInfo("small", "#fff", "1"), ClassInfo("smal", "#000", "2")],
        journal=tmp_path / "j",
    )
    s.apply_labels([("im", 1, "small"), ("im", 2, "smal")], source="import")
    stack = UndoStack(s)
    stack.push(MergeClasses("smal", "small"))
    assert s.class_names == ("small",)
    assert s.get("im", 2).class_name == "small" and s.get("im", 2).source == "import"
    stack.undo()
    assert s.class_names == ("small", "smal") and s.get("im", 2).class_name == "smal"
    replayed = Annotations([ClassInfo("small", "#fff", "1"), ClassInfo("smal", "#000", "2")])
    replayed.replay_journal(tmp_path / "j")
    assert replayed.items() == s.items() and replayed.class_names == s.class_names
