"""`--help` that teaches: every argument of every sub-command is described, with its default, and
every sub-command shows an example."""

from __future__ import annotations

import argparse
import re

import pytest

from svetlana.cli.parser import build_parser
from tests.conftest import run_cli


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


SUBCOMMANDS = sorted(_subparsers())


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_argument_is_described_with_its_default_and_an_example(name):
    sp = _subparsers()[name]
    formatter = sp._get_formatter()
    for action in sp._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = formatter._get_help_string(action) if action.help else ""
        label = "/".join(action.option_strings) or action.dest
        assert text.strip(), f"{name}: {label} has no help text"
        d = action.default
        if action.option_strings and d not in (None, [], argparse.SUPPRESS) and d is not False:
            assert "default" in text.lower(), f"{name}: {label} does not give its default {d!r}"
    assert sp.epilog and f"svetlana {name}" in sp.epilog, f"{name} shows no example"


def test_train_help_shows_what_each_option_does_and_its_default(capsys):
    code, out, _ = run_cli("train", "--help")
    text = out + capsys.readouterr().out
    assert code == 0
    for option, default in (("--epochs", "30"), ("--lr", "0.01"), ("--seed", "0")):
        block = re.search(rf"\n  {option} [A-Z_]+(.*?)(?=\n  -)", text, re.S)
        assert block, option
        words = " ".join(block.group(1).split())
        assert len(words) > 20 and f"(default: {default})" in words, (option, words)
    flat = " ".join(text.split())
    assert "example: svetlana train cells.svetlana" in flat
    assert "bundle the project folder" in flat
