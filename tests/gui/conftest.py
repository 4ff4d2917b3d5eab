"""GUI test setup: offscreen Qt, no QThread left running, no blocking dialogs, small projects."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere

import gc  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tifffile  # noqa: E402
from PySide6.QtCore import QSettings, QThread  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"  # tests/data (real StarDist images)

_threads: list[weakref.ref] = []
_original_init = QThread.__init__


def _tracking_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    _threads.append(weakref.ref(self))


QThread.__init__ = _tracking_init


# ---- which controls the tests click (tests/gui/test_every_control_is_clicked.py) ------------
CLICKED: set[str] = set()  # names of the buttons clicked with the mouse / actions triggered
GUI_TESTS = Path(__file__).resolve().parent
COLLECTED: set[Path] = set()  # the test files of this run
ALL_GUI_TESTS: set[Path] = set()


def control_name(obj) -> str:
    """A stable name for a button or action: its owner (the nearest Svetlana class) and text."""
    from PySide6.QtGui import QAction

    text = obj.text().replace("&", "").rstrip("…").strip()
    if isinstance(obj, QAction):
        return f"action: {text}"
    owner = obj.parentWidget()
    while owner is not None and not type(owner).__module__.startswith("svetlana"):
        owner = owner.parentWidget()
    return f"{type(owner).__name__ if owner is not None else '?'}: {text}"


def window_controls(win) -> dict[str, object]:
    """Every button (push, radio, check box) and menu action of the window, by name."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QAbstractButton, QTabBar

    out: dict[str, object] = {}
    for b in win.findChildren(QAbstractButton):
        if isinstance(b.parentWidget(), QTabBar) or not b.text():
            continue  # the tab bar's own scroll buttons
        out[control_name(b)] = b
    for a in win.findChildren(QAction):
        if a.menu() is None and not a.isSeparator() and a.text():
            out[control_name(a)] = a
    return out


def _watch_actions(win) -> None:
    from PySide6.QtWidgets import QAbstractButton

    for name, obj in window_controls(win).items():
        if isinstance(obj, QAbstractButton):
            obj.setProperty("test_control", name)  # its name even once its text changed
        else:
            obj.triggered.connect(lambda *_a, n=name: CLICKED.add(n))


class _ClickRecorder:
    """Records buttons released under the mouse (qtbot.mouseClick), not ``button.click()``."""

    def eventFilter(self, obj, event) -> bool:  # installed through a QObject below
        from PySide6.QtCore import QEvent
        from PySide6.QtWidgets import QAbstractButton

        if event.type() == QEvent.Type.MouseButtonRelease and isinstance(obj, QAbstractButton):
            CLICKED.add(obj.property("test_control") or control_name(obj))
        return False


@pytest.fixture(scope="session", autouse=True)
def record_clicks(qapp):
    """Install the click recorder for the whole run, and watch every window's actions."""
    from PySide6.QtCore import QObject

    from svetlana.gui.main_window import MainWindow

    class Filter(QObject):
        eventFilter = _ClickRecorder.eventFilter

    recorder = Filter()
    qapp.installEventFilter(recorder)
    original = MainWindow.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _watch_actions(self)

    MainWindow.__init__ = init
    yield CLICKED
    MainWindow.__init__ = original
    qapp.removeEventFilter(recorder)


def pytest_collection_modifyitems(config, items):
    """The check of clicked controls runs last, after every test that clicks."""
    last = [i for i in items if i.path.name == "test_every_control_is_clicked.py"]
    items[:] = [i for i in items if i not in last] + last
    COLLECTED.update(Path(i.path) for i in items)
    ALL_GUI_TESTS.update(GUI_TESTS.rglob("test_*.py"))  # as they were when the run began


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp):
    """Fail any test that leaves a QThread running (napari's rule)."""
    _threads.clear()
    yield
    gc.collect()
    running = []
    for ref in _threads:
        t = ref()
        try:
            if t is not None and t.isRunning():
                running.append(t)
        except RuntimeError:  # the C++ object is already deleted
            continue
    _threads.clear()
    for t in running:  # stop them so later tests are not affected, then fail this one
        t.quit()
        t.wait(5000)
    assert not running, f"{len(running)} QThread(s) still running at the end of the test"


@pytest.fixture(autouse=True)
def closing_never_blocks(monkeypatch):
    """Closing a window with work still running asks "Work in progress"; offscreen that box
    would wait forever (a failed test closing its window with a job running hung a run for 10
    minutes): it is answered Yes (stop the work). Other questions go to the real box, which a
    test answers itself (tests/gui/modal.py) or patches."""
    from PySide6.QtWidgets import QMessageBox

    real = QMessageBox.question

    def answer(parent, title, text, *args, **kwargs):
        if title == "Work in progress":
            return QMessageBox.StandardButton.Yes
        return real(parent, title, text, *args, **kwargs)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer))


@pytest.fixture
def shown_errors(monkeypatch):
    """Error dialogs are recorded instead of shown (they would block)."""
    from svetlana.gui import errors

    shown: list[str] = []

    def fake_exec(self):
        shown.append(self.text())
        return 0

    monkeypatch.setattr(errors.ErrorDialog, "exec", fake_exec)
    return shown


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def write_scene(
    folder: Path, name: str = "cells", n_objects: int = 30, shape=(256, 256), seed: int = 0
):
    """An image + mask pair on disk (TIFF) from the synthetic texture scene."""
    from svetlana.core.synthetic.easy import texture_scene

    scene = texture_scene(n_objects=n_objects, shape=shape, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = folder / f"{name}.tif", folder / f"{name}_masks.tif"
    tifffile.imwrite(image, scene.image[0])
    tifffile.imwrite(mask, scene.labels)
    return image, mask


def write_3d(folder: Path, name: str = "stack"):
    """A small 3D stack with a few cubes on different slices."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.zeros((12, 64, 64), np.uint16)
    rng = np.random.default_rng(1)
    k = 1
    for z in (1, 5, 9):
        for y in (8, 36):
            for x in (8, 36):
                labels[z : z + 3, y : y + 16, x : x + 16] = k
                k += 1
    image = (rng.normal(100, 10, labels.shape) + 400 * (labels > 0)).astype(np.uint16)
    ip, mp = folder / f"{name}.tif", folder / f"{name}_masks.tif"
    tifffile.imwrite(ip, image)
    tifffile.imwrite(mp, labels)
    return ip, mp


@pytest.fixture
def pair(tmp_path):
    return write_scene(tmp_path / "data")


@pytest.fixture
def window(qtbot, settings, shown_errors):
    from svetlana.gui.main_window import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def project_window(window, tmp_path, pair):
    """The window with a new two-class project of one 30-object image, created like the dialog does."""
    from svetlana.core.usecases.setup import create_project

    project = create_project(
        tmp_path / "p.svetlana", [(pair[0], pair[1], "cells")], ["class 1", "class 2"]
    )
    window.set_project(project)
    window.view.flush()
    return window


@pytest.fixture
def make_pair():
    return write_scene


@pytest.fixture
def make_3d():
    return write_3d


# ---- the tab tests' projects, sessions and tabs (tests/gui/projects.py) ----------------------
@pytest.fixture
def open_session():
    """Opens a Session on a Project (or a bundle's path); every one is closed when the test ends."""
    from svetlana.gui.session import Session

    opened = []

    def open_(project_or_path):
        s = Session()
        opened.append(s)
        if isinstance(project_or_path, (str, Path)):
            s.open_project(project_or_path)
        else:
            s.set_project(project_or_path)
        return s

    yield open_
    for s in opened:
        s.close_project()


@pytest.fixture
def labelled_session(tmp_path, open_session):
    """A session on a project of one 30-object image, 10 labels per class, no model."""
    from tests.gui.projects import labelled_project

    project, _scene, _src = labelled_project(tmp_path)
    return open_session(project)


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory):
    """The labelled project with a small CNN (3 epochs), trained once per test module (the slow
    part); tests copy it. Returns (folder holding p.svetlana and src/, scene)."""
    from tests.gui.projects import labelled_project

    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import train_project

    tmp = tmp_path_factory.mktemp("bundle")
    project, scene, _src = labelled_project(tmp)
    train_project(project, TrainingConfig(epochs=3))
    project.close()
    return tmp, scene


@pytest.fixture
def trained_session(trained_bundle, tmp_path, open_session):
    """A session on a copy of the trained bundle; ``.scene`` and ``.src`` say what it was made of."""
    import shutil

    tmp, scene = trained_bundle
    shutil.copytree(tmp / "p.svetlana", tmp_path / "p.svetlana")
    s = open_session(tmp_path / "p.svetlana")
    s.scene = scene
    s.src = tmp / "src"
    return s


@pytest.fixture
def prediction_tab(qtbot, trained_session):
    """The Predict tab on the trained session (nothing predicted yet)."""
    from svetlana.gui.tabs.predict import PredictionTab

    w = PredictionTab(trained_session)
    qtbot.addWidget(w)
    return w


@pytest.fixture
def training_tab(qtbot, labelled_session):
    """The Train tab on the labelled session, shown, once it has found its device."""
    from svetlana.gui.tabs.train import TrainingTab

    w = TrainingTab(labelled_session)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.deviceDetected, timeout=60000):  # torch + sklearn imports
        w.show()
    return w
