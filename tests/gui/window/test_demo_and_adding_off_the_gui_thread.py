"""Try the demo: the project is built in a worker (the window keeps painting), then opened."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt


def test_the_demo_button_builds_the_demo_in_a_worker_then_opens_it(
    window, qtbot, tmp_path, monkeypatch
):
    from svetlana.core.usecases import demo
    from svetlana.gui.window import projects

    built_on = []
    real = demo.build_demo

    def spy(path, *a, **k):
        built_on.append(threading.current_thread() is threading.main_thread())
        return real(path, *a, **k)

    monkeypatch.setattr(demo, "build_demo", spy)
    monkeypatch.setattr(projects, "demo_path", lambda: tmp_path / "demo.svetlana")
    qtbot.mouseClick(window.start_page.demo_button, Qt.MouseButton.LeftButton)
    assert window.session.busy and not window.demo_action.isEnabled()
    qtbot.waitUntil(lambda: window.session.project is not None, timeout=60000)
    assert built_on == [False]
    assert window.session.project.image_names == ("textures",)
    assert window.image_box.currentText() == "textures" and not window.session.busy
    assert window.projects.stop_jobs()  # the live preview started refitting on the demo's labels
