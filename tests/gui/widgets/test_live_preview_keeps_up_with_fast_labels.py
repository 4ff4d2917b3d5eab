"""The live preview while a user labels quickly: a refit is never thrown away because newer
labels came (it is shown, and one more refit follows with them), and a waiting refit is not put
off by every new key, so the tint appears while the keys still come."""

from __future__ import annotations

from conftest import write_scene  # noqa: I001

WAIT_MS = 120_000  # measuring and a first forest on a busy machine
OBJECTS = 150  # enough keys to outlast a refit on a busy machine (seconds)
KEY_EVERY_MS = 100  # faster than the refit's debounce (300 ms)


def test_the_tint_appears_while_labelling_fast_and_refits_never_outnumber_labels(
    window, qtbot, tmp_path
):
    from svetlana.core.usecases.setup import create_project

    pair = write_scene(tmp_path / "data", n_objects=OBJECTS, shape=(512, 512))
    window.set_project(
        create_project(tmp_path / "p.svetlana", [(*pair, "cells")], ["class 1", "class 2"])
    )
    live, session = window.annotation_tab.live, window.session
    qtbot.waitUntil(lambda: live.result is not None and not live.running, timeout=WAIT_MS)
    assert session.view_options.get("live") is None  # no labels yet: no tint
    n_objects = len(live.result.table.ids)
    refits: list[bool] = []
    live.started.connect(refits.append)
    keys = 0
    while keys < n_objects - 1 and session.view_options.get("live") is None:
        qtbot.keyClick(window, "1" if keys % 2 == 0 else "2")  # two classes from the 2nd key
        keys += 1
        qtbot.wait(KEY_EVERY_MS)
    assert session.view_options.get("live") is not None, f"no tint in {keys} quick keys"
    assert sum(session.project.annotations.counts().values()) == keys
    assert 1 <= len(refits) <= keys
    for _ in range(5):  # and the keys go on: the preview follows
        qtbot.keyClick(window, "1" if keys % 2 == 0 else "2")
        keys += 1
        qtbot.wait(KEY_EVERY_MS)

    def caught_up():  # the last refit has every label
        r = live.result
        assert r is not None and r.fast is not None and r.fast.n_labels == keys
        assert not live.running

    qtbot.waitUntil(caught_up, timeout=WAIT_MS)
    assert len(session.view_options["live"].ids) == n_objects
    assert len(refits) <= keys
