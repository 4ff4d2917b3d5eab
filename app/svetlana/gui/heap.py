"""The cyclic garbage collector and the window: what is loaded for good is frozen out of its walk.

Once torch and scikit-learn are loaded (the Train tab loads them in the background), their
hundreds of thousands of objects (modules, functions, classes) are moved out of the collector's
reach (``gc.freeze``): a full collection then walks only the objects made since. Without it each
full collection, started by whichever thread allocates, took 30-75 ms on an idle machine and
200-300 ms at load 8 mid-training, the window frozen meanwhile (tests/gui/tabs/
test_training_tab.py measures it). Frozen objects are still freed when no longer referenced;
only cycles among them are not, so when a project is closed or another one opened, what was
frozen with the project then open is handed back to the collector, collected, and the rest
frozen again.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

_frozen = False


def freeze_loaded_objects() -> None:
    """Freeze every object made so far (once torch and scikit-learn are loaded); once."""
    global _frozen
    if not _frozen:
        gc.freeze()
        _frozen = True


def collect_after_project() -> None:
    """After the project shown changed: collect what the frozen objects held (the closed
    project's cycles), then freeze again. Nothing to do before anything was frozen."""
    if not _frozen:
        return
    t0 = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.debug("collected after the project changed in %.0f ms", 1000 * (time.perf_counter() - t0))
