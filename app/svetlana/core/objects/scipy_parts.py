"""The two compiled parts of scipy the measurements use on every prediction -- ndimage's 1D
correlation (the filter bank's Gaussians) and the k-d tree (neighbours, context) -- loaded
without their packages' imports when those are not imported yet.

``import scipy.ndimage`` and ``import scipy.spatial`` run array-API wrappers that parse a few
hundred docstrings, and scipy.spatial imports scipy.linalg, special, qhull and the rotations: on
the 2-core benchmark machine ~0.5 s of CPU, a quarter of a whole prediction of 16,671 objects.
The extension modules are the same code either way (registered under their own names, so a
later import of the package uses them); where scipy is laid out otherwise, the package's import.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()  # one loader at a time (the background thread and the measurement)
_LOADED: dict[str, ModuleType] = {}


def _extension(name: str) -> ModuleType:
    """The compiled module ``name`` (e.g. "scipy.ndimage._nd_image"), imported alone."""
    mod = _LOADED.get(name)
    if mod is not None:
        return mod
    with _LOCK:
        mod = _LOADED.get(name) or _load(name)
        _LOADED[name] = mod
    return mod


def _load(name: str) -> ModuleType:
    import importlib

    if name in sys.modules:  # its package is imported (or being imported): the usual way
        return importlib.import_module(name)
    try:
        import importlib.machinery
        import importlib.util
        from pathlib import Path

        import scipy

        package, _, leaf = name.rpartition(".")
        folder = Path(scipy.__file__).parent.joinpath(*package.split(".")[1:])
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"{leaf}{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location(name, path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                try:
                    spec.loader.exec_module(mod)
                except BaseException:
                    sys.modules.pop(name, None)
                    raise
                return mod
    except (ImportError, OSError, AttributeError):
        pass
    return importlib.import_module(name)  # another layout: the package's way


def correlate1d():
    """scipy.ndimage's compiled correlate1d(input, weights, axis, output, mode, cval, origin)."""
    mod = _extension("scipy.ndimage._nd_image")
    if not hasattr(mod, "correlate1d"):  # pragma: no cover - another scipy
        from scipy.ndimage import _nd_image as mod
    return mod.correlate1d


def kdtree():
    """scipy.spatial.cKDTree."""
    mod = _extension("scipy.spatial._ckdtree")
    if not hasattr(mod, "cKDTree"):  # pragma: no cover - another scipy
        from scipy.spatial import cKDTree

        return cKDTree
    return mod.cKDTree


def csr_matvec():
    """scipy.sparse's compiled csr_matvec(n_row, n_col, Ap, Aj, Ax, Xx, Yx) (``Yx += A @ Xx``,
    each row summed in order from its entry of ``Yx``), or None where this scipy has none."""
    try:
        return _extension("scipy.sparse._sparsetools").csr_matvec
    except (ImportError, AttributeError):  # pragma: no cover - another scipy
        return None


def load_in_background() -> None:
    """Start loading both parts on a thread (the caller measures meanwhile: its passes over the
    mask run in numpy, which leaves the interpreter to the import); a part asked for before
    it is loaded waits for it."""
    names = ("scipy.ndimage._nd_image", "scipy.sparse._sparsetools", "scipy.spatial._ckdtree")
    if all(name in _LOADED for name in names):
        return

    def load() -> None:
        try:
            correlate1d()
            csr_matvec()
            kdtree()
        except Exception:  # noqa: BLE001 - the measurement imports them itself then
            pass

    threading.Thread(target=load, name="scipy-parts", daemon=True).start()
