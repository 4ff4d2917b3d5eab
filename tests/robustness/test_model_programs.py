"""No model program ever runs: TorchScript files are refused as networks, as project models, always.

Each attack file (``programs.py``) touches a victim file when run or loaded; the victim's bytes and
modification time are checked after every refusal.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from tests.robustness.helpers import assert_clear_error, make_bundle, ok, run_cli, snapshot
from tests.robustness.programs import Victim, write_programs

OPTS = ["--epochs", "1", "--val-fraction", "0", "--device", "cpu"]
TRAIN = ["--arch", "minimal", *OPTS]  # a CNN: its weights.pt is what the tampering replaces


def test_the_programs_are_real_attacks(tmp_path):
    """Run by torch.jit (what earlier versions did), every file touches its victim."""
    victim = Victim(tmp_path / "decoy.txt")
    programs = write_programs(tmp_path / "nets", victim.path)
    x = torch.zeros(1, 2, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, path in programs.items():
            victim.path.write_bytes(victim.stat[0])
            module = torch.jit.load(str(path))
            out = module(x)
            if name.startswith("read_secret"):  # the victim's first bytes are in the output
                assert out[0].tolist() == list(victim.stat[0][:2]), name
            else:
                assert victim.path.read_bytes() != victim.stat[0], name


def test_train_refuses_every_program_before_running_it(tmp_path):
    bundle = make_bundle(tmp_path)
    victim = Victim(tmp_path / "precious.txt")
    before = snapshot(bundle)
    for name, path in write_programs(tmp_path / "nets", victim.path).items():
        code, _, err = run_cli("-q", "train", bundle, "--arch", path, *OPTS)
        assert_clear_error(code, err)
        assert "TorchScript program" in err and str(path) in err, err
        assert "torch.save(model.state_dict(), path)" in err, err
        assert victim.unchanged(), name
    assert snapshot(bundle) == before


@pytest.mark.parametrize("tamper", ["weights", "card", "planted"])
def test_a_tampered_project_model_is_refused_on_every_load(tmp_path, tamper):
    bundle = make_bundle(tmp_path)
    ok("-q", "train", bundle, *TRAIN, "--name", "good")
    ok("-q", "train", bundle, *TRAIN, "--name", "bad")
    victim = Victim(tmp_path / "precious.txt")
    programs = write_programs(tmp_path / "nets", victim.path)
    folder = bundle / "models" / "bad"
    for name, program in programs.items():
        if tamper == "weights":  # weights.pt swapped for a program
            shutil.copyfile(program, folder / "weights.pt")
        elif tamper == "card":  # what an earlier version stored for a TorchScript network
            (folder / "weights.pt").unlink(missing_ok=True)
            shutil.copyfile(program, folder / "model.ts")
            card = json.loads((folder / "card.json").read_text())
            (folder / "card.json").write_text(json.dumps({**card, "architecture": "torchscript"}))
        else:  # a model.ts planted beside valid weights
            shutil.copyfile(program, folder / "model.ts")
        before = snapshot(bundle)
        for args in (
            ["predict", bundle, "--model", "bad", "--device", "cpu"],
            ["predict", bundle, "--model", "bad", "--out", tmp_path / "o"],
            ["export-model", bundle, "--model", "bad", "--out", tmp_path / "m"],
            ["export-mask", bundle, "--model", "bad", "--keep", "dim", "--out", tmp_path / "f"],
        ):
            code, _, err = run_cli("-q", *args)
            assert_clear_error(code, err)
            assert "refused" in err and "TorchScript program" in err, err
            assert victim.unchanged(), (name, args)
        assert snapshot(bundle) == before
        assert not any((tmp_path / d).exists() for d in ("o", "m", "f"))
        # The project still opens; the other model still predicts.
        assert "bad" in ok("info", bundle)
        ok("-q", "predict", bundle, "--model", "good", "--out", tmp_path / "g", "--device", "cpu")
        assert victim.unchanged()
        shutil.rmtree(tmp_path / "g")


def test_an_exported_onnx_file_is_not_a_network_to_train_from(tmp_path):
    """Svetlana writes ONNX but never loads it: fine-tuning takes weights.pt."""
    bundle = make_bundle(tmp_path)
    ok("-q", "train", bundle, *TRAIN)
    ok("export-model", bundle, "--out", tmp_path / "m")
    before = snapshot(bundle)
    code, _, err = run_cli("-q", "train", bundle, "--arch", tmp_path / "m" / "model.onnx", *OPTS)
    assert_clear_error(code, err)
    assert "torch.save(model.state_dict(), path)" in err
    assert snapshot(bundle) == before
    ok("-q", "train", bundle, "--arch", tmp_path / "m" / "weights.pt", *OPTS, "--name", "again")
    assert np.isfinite(json.loads((bundle / "models/again/card.json").read_text())["seconds"])
