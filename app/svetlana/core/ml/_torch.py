"""Import torch once, under a lock, before any thread uses it.

torch imports parts of itself lazily (the optimiser's compiler hooks, deterministic-algorithm
settings, torch.fx). Two threads triggering those imports at once -- the GUI's device detection
and a training worker, or the CLI's background import and the main thread -- can deadlock or
see a half-initialised module ("cannot import name ... from partially initialized module").
Every core entry point that uses torch calls ``load_torch`` first, with the parts it needs.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_done: set[str] = set()


def _warm_train(torch: Any) -> None:
    param = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.AdamW([param], lr=1e-3)
    param.sum().backward()
    optimiser.step()  # loads torch._dynamo, which the first real step would import
    was = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(was, warn_only=warn)


def _warm_fx(torch: Any) -> None:
    import torch.fx  # noqa: F401
    import torch.fx.experimental.optimization  # noqa: F401


_PARTS = {"train": _warm_train, "fx": _warm_fx}


def load_torch(*parts: str) -> Any:
    """``import torch`` (and warm up ``parts``: "train", "fx") safely from any thread."""
    wanted = {"base", *parts}
    if wanted <= _done:
        import torch

        return torch
    with _lock:
        import torch

        _done.add("base")
        for part in parts:
            if part not in _done:
                _PARTS[part](torch)
                _done.add(part)
    return torch
