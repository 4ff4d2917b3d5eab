"""The command line's grammar: every sub-command and option, with its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from svetlana import __version__


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _spacing(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"spacing must be numbers like 2,0.5,0.5, not {text!r}"
        ) from None
    if len(values) not in (2, 3) or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("spacing must be 2 or 3 positive numbers (Z,Y,X)")
    return values


def build_parser() -> argparse.ArgumentParser:
    from svetlana.core.ml.models import ARCHITECTURES
    from svetlana.core.ml.training import AUGMENTATIONS, LOSSES, TrainingConfig

    d = TrainingConfig()
    p = argparse.ArgumentParser(
        prog="svetlana",
        description="Classify segmented objects in microscopy images: label, train, predict, count.",
    )
    p.add_argument("--version", action="version", version=f"svetlana {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("init", help="create a project bundle")
    s.add_argument("bundle", type=Path)
    s.add_argument("--classes", type=_csv_list, default=[], help="class names, comma separated")

    s = sub.add_parser("add", help="add an image and its segmentation mask")
    s.add_argument("bundle", type=Path)
    s.add_argument("image", type=Path)
    s.add_argument("mask", type=Path)
    s.add_argument("--name", help="name in the project (default: the image file's stem)")
    s.add_argument("--axes", help="axes of the image, e.g. ZCYX or YXC (default: inferred)")
    s.add_argument("--spacing", type=_spacing, help="voxel size Z,Y,X (3D) when the file lacks it")
    s.add_argument(
        "--force-mask",
        action="store_true",
        help="use the mask even if it looks like an intensity image (skip that check)",
    )

    s = sub.add_parser(
        "remove-image",
        help="remove an image, its mask and its labels from a project",
        epilog="example: svetlana remove-image cells.svetlana plate3 --yes",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("image", help="the image's name in the project (svetlana info lists them)")
    s.add_argument("--yes", action="store_true", help="also remove the image's labels")

    s = sub.add_parser(
        "set-spacing",
        help="set an image's voxel size (Z,Y,X or Y,X), e.g. when its file lacked it",
        epilog="example: svetlana set-spacing cells.svetlana stack1 2,0.5,0.5",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("image", help="the image's name in the project")
    s.add_argument("spacing", type=_spacing, help="voxel size, e.g. 2,0.5,0.5 (Z,Y,X)")

    s = sub.add_parser("import-labels", help="import labels from a CSV (image,object,class)")
    s.add_argument("bundle", type=Path)
    s.add_argument("csv", type=Path)
    s.add_argument(
        "--add-classes",
        action="store_true",
        help="add class names the project lacks (without it they are refused as likely typos)",
    )

    s = sub.add_parser(
        "classes",
        help="list the classes; rename, merge or remove one",
        description="Without an action: list the classes with their labels and models.",
    )
    s.add_argument("bundle", type=Path)
    act = s.add_mutually_exclusive_group()
    act.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"), help="rename a class")
    act.add_argument(
        "--merge",
        nargs=2,
        metavar=("CLASS", "INTO"),
        help="give CLASS's labels to INTO and remove CLASS",
    )
    act.add_argument("--remove", metavar="CLASS", help="remove a class (with labels: --force)")
    s.add_argument("--force", action="store_true", help="with --remove: also remove its labels")

    s = sub.add_parser(
        "suggest",
        help="which objects to label next, most useful first (CSV image,object)",
        description="Uncertain objects of the fast forest refitted on your labels, spread over "
        "the measurements, with 20 %% random ones; random order until two classes are labelled.",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("-n", type=int, default=10, help="how many objects (default 10)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")

    s = sub.add_parser(
        "check-labels",
        help="labels that are probably wrong (CSV image,object,label,suggested,score)",
        description="Cross-validated forests judge every label; confident learning (cleanlab) "
        "lists those likely wrong, most suspicious first.",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, help="CSV file to write (default: print it)")

    s = sub.add_parser("export-labels", help="export labels to a CSV (image,object,class,source)")
    s.add_argument("bundle", type=Path)
    s.add_argument("csv", type=Path)

    s = sub.add_parser("train", help="train a model on the labelled objects")
    s.add_argument("bundle", type=Path)
    s.add_argument(
        "--arch",
        default="auto",
        help=(
            "auto (default: cross-validate a forest on measurements and the CNN "
            f"{d.arch!r}, keep the better), forest, a CNN ({', '.join(ARCHITECTURES)}), "
            "or a .pt FILE holding a state_dict of one (weights only)"
        ),
    )
    s.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="auto: seconds for cross-validation and the final fit (default 12 in 2D, 20 in 3D)",
    )
    s.add_argument("--epochs", type=int, default=d.epochs)
    s.add_argument("--batch-size", type=int, default=d.batch_size)
    s.add_argument("--lr", type=float, default=d.lr)
    s.add_argument("--weight-decay", type=float, default=d.weight_decay)
    s.add_argument("--loss", choices=LOSSES, default=d.loss)
    s.add_argument("--augment", choices=AUGMENTATIONS, default=d.augment)
    s.add_argument("--patch-size", default="auto", help="pixels, or auto (default)")
    s.add_argument("--val-fraction", type=float, default=d.val_fraction)
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: chosen for speed)"
    )
    s.add_argument("--name", help="model name (default: model-N)")

    s = sub.add_parser(
        "predict", help="classify every object; write class masks and predictions.csv"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument(
        "--folder", type=Path, help="predict image/mask pairs of a folder outside the project"
    )
    s.add_argument("--axes", help="axes of the folder's images (with --folder)")
    s.add_argument("--out", type=Path, help="output folder (default: inside the project)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with --folder: run on a local Dask cluster of N worker processes",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --folder: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786)",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="with --folder: keep the images an earlier run into --out completed",
    )

    s = sub.add_parser("info", help="show the project's images, classes, labels and models")
    s.add_argument("bundle", type=Path)
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser(
        "demo", help="build the demo project (two textures); --headless trains and scores it"
    )
    s.add_argument(
        "bundle",
        type=Path,
        nargs="?",
        help="where to create it (default: demo.svetlana in your data folder, kept between runs)",
    )
    s.add_argument(
        "--headless", action="store_true", help="no window: train, predict, print the accuracy"
    )

    _add_export_parsers(sub)
    _add_table_parsers(sub)

    s = sub.add_parser("gui", help="open the desktop application")
    s.add_argument("bundle", type=Path, nargs="?")

    sub.add_parser(
        "install-desktop",
        help="Linux: add Svetlana to the applications menu and open .svetlana projects with it",
    )
    sub.add_parser("uninstall-desktop", help="Linux: remove what install-desktop added")
    # -q/-v also after the command (`svetlana train B -q`); SUPPRESS keeps the top-level value.
    for sp in sub.choices.values():
        sp.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=argparse.SUPPRESS,
            help="no progress output",
        )
        sp.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log details to stderr",
        )
    return p


def _add_export_parsers(sub) -> None:
    """Sub-commands that take results out of Svetlana (see core.exports)."""
    s = sub.add_parser(
        "export-mask",
        help="write the segmentation keeping only objects of chosen classes (original ids)",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--keep", type=_csv_list, default=[], help="classes to keep, comma separated")
    s.add_argument(
        "--min-confidence", type=float, default=0.0, help="keep only objects predicted this surely"
    )
    s.add_argument(
        "--per-class", action="store_true", help="also write one mask per class: IMAGE_CLASS.tif"
    )
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")

    s = sub.add_parser(
        "export-patches", help="write the labelled objects' patches and classes (npz, csv, tiff)"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--patch-size", default="auto", help="pixels, or auto (default)")
    s.add_argument(
        "--tiff", action="store_true", help="also one TIFF per patch: CLASS/IMAGE_ID.tif"
    )

    s = sub.add_parser(
        "export-model",
        help="write a model as ONNX (runs without Svetlana) + weights.pt + card.json",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="model name (default: the newest)")
    s.add_argument(
        "--format",
        choices=("svetlana", "bioimageio"),
        default="svetlana",
        help="svetlana (default): the model folder (model.onnx, weights.pt, card.json); "
        "bioimageio: a bioimage.io model package (folder + .zip) for bioimage.io tools",
    )
    s.add_argument(
        "--author", action="append", help="bioimageio: an author's name (repeat for several)"
    )
    s.add_argument("--license", help="bioimageio: SPDX licence id (default: CC-BY-4.0)")
    s.add_argument(
        "--cite",
        nargs=2,
        action="append",
        metavar=("TEXT", "DOI_OR_URL"),
        help="bioimageio: a reference to cite besides the Svetlana paper (repeatable)",
    )
    s.add_argument("--name", help="bioimageio: the package's name (default: project and model)")
    s.add_argument("--out", type=Path, required=True, help="output folder")


def _add_table_parsers(sub) -> None:
    """Sub-commands that write tables of per-object measurements (see core.tables)."""
    s = sub.add_parser(
        "measure", help="measure every object (shape, intensity, texture): measurements.csv"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")

    s = sub.add_parser(
        "export-table",
        help="one CSV of every object: final class, probabilities, measurements; and a summary",
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--model", help="whose saved predictions (default: the newest model)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument(
        "--summary",
        type=_csv_list,
        help="measurements averaged per class in summary.csv (default: size and channel means)",
    )
    s.add_argument("--out", type=Path, required=True, help="output folder")

    s = sub.add_parser(
        "export-objects", help="object outlines with class and measurements for QuPath (GeoJSON)"
    )
    s.add_argument("bundle", type=Path)
    s.add_argument("--format", choices=("geojson",), default="geojson")
    s.add_argument("--model", help="whose saved predictions (default: the newest model)")
    s.add_argument("--image", nargs="+", help="image names (default: all)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
