"""Arguments several sub-commands share (the project, images, model, device, output folder)
and the help formatter: each defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

IMAGES_HELP = "image names (default: all)"
MODEL_HELP = "model name (default: the newest)"
SAVED_OR_NOW = (
    "whose predictions: saved ones when current, else predicted now (default: the newest model)"
)
DEVICES = ("auto", "cpu", "cuda", "mps")


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def spacing(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"spacing must be numbers like 2,0.5,0.5, not {text!r}"
        ) from None
    if len(values) not in (2, 3) or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("spacing must be 2 or 3 positive numbers (Z,Y,X)")
    return values


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples (epilogs) kept as written; each option's default appended to its help, unless
    the help already gives it or there is none to give."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text.lower()
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


def bundle(s) -> None:
    """The project folder, the first argument of every project command."""
    s.add_argument("bundle", type=Path)


def images(s) -> None:
    s.add_argument("--image", nargs="+", help=IMAGES_HELP)


def model(s, help: str = MODEL_HELP) -> None:
    s.add_argument("--model", help=help)


def device(s, help: str) -> None:
    s.add_argument("--device", choices=DEVICES, default="auto", help=help)


def out_folder(s, help: str = "output folder") -> None:
    s.add_argument("--out", type=Path, required=True, help=help)
