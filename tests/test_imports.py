"""Import rules: the core and CLI load neither Qt nor torch (only private `_nets` does, lazily)."""

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_core_and_cli_import_neither_qt_nor_torch():
    mods = _loaded_after(
        "import svetlana.core, svetlana.cli\n"
        "import importlib, pkgutil\n"
        "for m in pkgutil.walk_packages(svetlana.core.__path__, 'svetlana.core.'):\n"
        "    if '._' not in m.name: importlib.import_module(m.name)\n"
        "from svetlana.cli.parser import build_parser; build_parser()\n"
    )
    assert not {m for m in mods if m.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6")}
    assert "torch" not in mods
    assert not {m for m in mods if m.startswith("svetlana.gui")}


def test_help_runs_without_a_display():
    r = subprocess.run([sys.executable, "-m", "svetlana", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in (
        "init",
        "add",
        "import-labels",
        "export-labels",
        "train",
        "predict",
        "info",
        "demo",
    ):
        assert cmd in r.stdout
