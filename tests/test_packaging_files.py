"""The files a release ships: launcher, MIME type, icons, PyInstaller spec and scripts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "resources"
PKG_RES = ROOT / "app" / "svetlana" / "resources"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_desktop_launcher_validates():
    r = subprocess.run(
        ["desktop-file-validate", str(RES / "svetlana.desktop")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_desktop_launcher_opens_projects():
    text = (RES / "svetlana.desktop").read_text()
    assert re.search(r"^Exec=svetlana-gui %f$", text, re.M)
    assert re.search(r"^MimeType=application/x-svetlana-project;$", text, re.M)
    assert re.search(r"^Icon=svetlana$", text, re.M)


def test_mime_type_recognises_the_manifest_svetlana_writes(tmp_path):
    from svetlana.core.project.bundle import Project

    root = ET.parse(RES / "svetlana-mime.xml").getroot()
    (mt,) = root.findall(f"{MIME_NS}mime-type")
    assert mt.get("type") == "application/x-svetlana-project"
    assert [g.get("pattern") for g in mt.findall(f"{MIME_NS}glob")] == ["*.svetlana"]
    assert mt.find(f"{MIME_NS}sub-class-of").get("type") == "application/json"

    with Project.create(tmp_path / "p.svetlana", ["a"]):
        pass
    head = (tmp_path / "p.svetlana" / "project.json").read_bytes()
    hits = []
    for match in mt.iter(f"{MIME_NS}match"):
        start, _, end = match.get("offset").partition(":")
        window = head[int(start) : int(end or start) + len(match.get("value"))]
        hits.append(match.get("value").encode() in window)
    assert any(hits), "the magic rule no longer matches the manifest Project.create writes"


def test_icons_exist_in_every_size():
    from PIL import Image

    for size in SIZES:
        with Image.open(PKG_RES / "icons" / f"svetlana-{size}.png") as im:
            assert im.format == "PNG" and im.size == (size, size) and im.mode == "RGBA"
            assert im.getchannel("A").getextrema() == (0, 255)  # rounded corners, opaque body
    with Image.open(RES / "svetlana.ico") as im:
        assert im.format == "ICO" and {(16, 16), (32, 32), (256, 256)} <= set(im.info["sizes"])
    with Image.open(RES / "svetlana.icns") as im:
        assert im.format == "ICNS"
    ET.parse(RES / "svetlana.svg")


def test_package_copies_match_the_sources():
    # `python resources/make_icons.py` syncs these; the installed package reads its copies.
    for name in ("svetlana.svg", "svetlana.desktop", "svetlana-mime.xml"):
        assert (PKG_RES / name).read_bytes() == (RES / name).read_bytes(), name


def test_pyinstaller_spec_and_scripts_parse():
    for path in (ROOT / "packaging" / "svetlana.spec", ROOT / "packaging" / "entry.py"):
        compile(path.read_text(), str(path), "exec")
    for script in ("build.sh", "smoke.sh"):
        path = ROOT / "packaging" / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def _spec_excludes() -> list[str]:
    import ast

    tree = ast.parse((ROOT / "packaging" / "svetlana.spec").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "excludes":
            return ast.literal_eval(node.value)
    raise AssertionError("no excludes list in the spec")


def test_spec_excludes_nothing_the_app_imports():
    # A module the frozen app leaves out but imports crashes it at run time (only the slow
    # packaging/smoke.sh would notice): import what the app imports and compare.
    code = (
        "import sys, svetlana.cli, svetlana.core.ml.training, svetlana.core.ml.inference, torch.optim\n"
        "import svetlana.gui.main_window, pyqtgraph\n"
        "print('\\n'.join(sys.modules))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    optional = {"PySide6.QtTest"}  # pyqtgraph imports it inside try/except
    excluded = [x for x in _spec_excludes() if x not in optional]
    clashes = [m for m in loaded for x in excluded if m == x or m.startswith(x + ".")]
    assert not clashes, f"the spec excludes modules the app imports: {sorted(clashes)}"
