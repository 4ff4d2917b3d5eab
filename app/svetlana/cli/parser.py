"""The command line's grammar: every sub-command and option, with its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from svetlana import __version__
from svetlana.cli.arguments import Formatter, bundle, csv_list, device, images, model, spacing
from svetlana.cli.export_parser import add_export_parsers, add_table_parsers

BUNDLE_HELP = "the project folder (NAME.svetlana)"

# One example per sub-command, shown under its --help.
EXAMPLES = {
    "init": "svetlana init cells.svetlana --classes infected,healthy",
    "add": "svetlana add cells.svetlana plate1.tif plate1_cp_masks.png\n"
    "  svetlana add cells.svetlana stack.tif stack_masks.tif --spacing 2,0.5,0.5",
    "remove-image": "svetlana remove-image cells.svetlana plate3 --yes",
    "set-spacing": "svetlana set-spacing cells.svetlana stack1 2,0.5,0.5",
    "import-labels": "svetlana import-labels cells.svetlana my_labels.csv   "
    "# header: image,object,class",
    "classes": "svetlana classes cells.svetlana --rename infectd infected",
    "suggest": "svetlana suggest cells.svetlana -n 20 > next.csv",
    "check-labels": "svetlana check-labels cells.svetlana --out suspects.csv",
    "export-labels": "svetlana export-labels cells.svetlana labels.csv",
    "train": "svetlana train cells.svetlana                      # auto: forest or CNN\n"
    "  svetlana train cells.svetlana --arch small --epochs 40 --device cuda",
    "predict": "svetlana predict cells.svetlana --out results/\n"
    "  svetlana predict cells.svetlana --folder screen/ --out screen_results/ --workers 4",
    "info": "svetlana info cells.svetlana --json",
    "demo": "svetlana demo --headless",
    "export-mask": "svetlana export-mask cells.svetlana --keep infected --out masks/",
    "export-patches": "svetlana export-patches cells.svetlana --out patches/ --tiff",
    "export-model": "svetlana export-model cells.svetlana --out model/\n"
    "  svetlana export-model cells.svetlana --format bioimageio --author 'A. Person' --out pkg/",
    "measure": "svetlana measure cells.svetlana --out measurements/",
    "export-table": "svetlana export-table cells.svetlana --out stats/",
    "export-objects": "svetlana export-objects cells.svetlana --out qupath/",
    "gui": "svetlana gui cells.svetlana",
    "install-desktop": "svetlana install-desktop",
    "uninstall-desktop": "svetlana uninstall-desktop",
}


def _finish_subparsers(sub) -> None:
    """Every sub-command: defaults in its help, its example, the project argument described."""
    for name, sp in sub.choices.items():
        sp.formatter_class = Formatter
        if name in EXAMPLES and not sp.epilog:
            sp.epilog = "example:\n  " + EXAMPLES[name]
        for action in sp._actions:
            if action.dest == "bundle" and not action.help:
                action.help = BUNDLE_HELP


def build_parser() -> argparse.ArgumentParser:
    from svetlana.core.ml.models import ARCHITECTURES
    from svetlana.core.ml.training_config import AUGMENTATIONS, LOSSES, TrainingConfig

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
    bundle(s)
    s.add_argument("--classes", type=csv_list, default=[], help="class names, comma separated")

    s = sub.add_parser("add", help="add an image and its segmentation mask")
    bundle(s)
    s.add_argument("image", type=Path, help="the image file (TIFF, OME-TIFF, PNG, JPEG, NPY)")
    s.add_argument(
        "mask",
        type=Path,
        help="its segmentation: a label mask (0 = background, one id per object) or a binary "
        "mask, e.g. Cellpose's _cp_masks.png or StarDist's labels",
    )
    s.add_argument("--name", help="name in the project (default: the image file's stem)")
    s.add_argument("--axes", help="axes of the image, e.g. ZCYX or YXC (default: inferred)")
    s.add_argument("--spacing", type=spacing, help="voxel size Z,Y,X (3D) when the file lacks it")
    s.add_argument(
        "--force-mask",
        action="store_true",
        help="use the mask even if it looks like an intensity image (skip that check)",
    )

    s = sub.add_parser(
        "remove-image",
        help="remove an image, its mask and its labels from a project",
    )
    bundle(s)
    s.add_argument("image", help="the image's name in the project (svetlana info lists them)")
    s.add_argument("--yes", action="store_true", help="also remove the image's labels")

    s = sub.add_parser(
        "set-spacing",
        help="set an image's voxel size (Z,Y,X or Y,X), e.g. when its file lacked it",
    )
    bundle(s)
    s.add_argument("image", help="the image's name in the project")
    s.add_argument("spacing", type=spacing, help="voxel size, e.g. 2,0.5,0.5 (Z,Y,X)")

    s = sub.add_parser(
        "import-labels",
        help="import labels from a CSV (image,object,class)",
        description="Rows naming one object twice with different classes are refused, with "
        "their line numbers (identical repeats are accepted).",
    )
    bundle(s)
    s.add_argument("csv", type=Path, help="CSV file with a header image,object,class")
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
    bundle(s)
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
    bundle(s)
    s.add_argument("-n", type=int, default=10, help="how many objects")
    images(s)

    s = sub.add_parser(
        "check-labels",
        help="labels that are probably wrong (CSV image,object,label,suggested,score)",
        description="Cross-validated forests judge every label; confident learning (cleanlab) "
        "lists those likely wrong, most suspicious first.",
    )
    bundle(s)
    images(s)
    s.add_argument("--out", type=Path, help="CSV file to write (default: print it)")

    s = sub.add_parser("export-labels", help="export labels to a CSV (image,object,class,source)")
    bundle(s)
    s.add_argument("csv", type=Path, help="CSV file to write")

    s = sub.add_parser("train", help="train a model on the labelled objects")
    bundle(s)
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
        help="auto: seconds for cross-validation and the final fit (default: from --mode and "
        "the number of labels; printed before training starts)",
    )
    s.add_argument(
        "--mode",
        choices=("quick", "thorough"),
        default="quick",
        help="auto: quick (default: ~20 s for 500 labels in 2D) or thorough (the CNN on every "
        "fold and the hybrid forest + CNN candidate; minutes: ~7 min for 500 labels)",
    )
    s.add_argument(
        "--epochs", type=int, default=d.epochs, help="CNN: passes over the labelled objects"
    )
    s.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="CNN: objects per training step"
    )
    s.add_argument("--lr", type=float, default=d.lr, help="CNN: learning rate (AdamW)")
    s.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help="CNN: AdamW weight decay"
    )
    s.add_argument(
        "--loss",
        choices=LOSSES,
        default=d.loss,
        help="CNN: training loss (weighted/focal help when a class is rare)",
    )
    s.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default=d.augment,
        help="CNN: random flips/rotations (and intensity changes) of the patches",
    )
    s.add_argument(
        "--patch-size", default="auto", help="CNN: patch side in pixels, or auto (from objects)"
    )
    s.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help="labelled objects held out to estimate the accuracy",
    )
    device(s, "where a CNN trains (auto: a GPU when there is one)")
    s.add_argument(
        "--seed", type=int, default=d.seed, help="random seed: the same seed, the same model"
    )
    s.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: chosen for speed)"
    )
    s.add_argument("--name", help="model name (default: model-N)")

    s = sub.add_parser(
        "predict", help="classify every object; write class masks and predictions.csv"
    )
    bundle(s)
    model(s)
    images(s)
    s.add_argument(
        "--folder", type=Path, help="predict image/mask pairs of a folder outside the project"
    )
    s.add_argument("--axes", help="axes of the folder's images, e.g. CYX (with --folder)")
    s.add_argument(
        "--out",
        type=Path,
        help="output folder, new or from an earlier predict (default: inside the project); "
        "never inside --folder",
    )
    device(s, "where a CNN runs (auto: a GPU when there is one)")
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
        help="with --folder: keep the images an earlier run into --out completed (their files "
        "unchanged, by content)",
    )

    s = sub.add_parser("info", help="show the project's images, classes, labels and models")
    bundle(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser(
        "demo", help="build the demo project (two textures); --headless trains and scores it"
    )
    s.add_argument(
        "bundle",
        type=Path,
        nargs="?",
        help="where to create it: a new folder, or a demo project made earlier (default: "
        "demo.svetlana in your data folder, kept between runs)",
    )
    s.add_argument(
        "--headless", action="store_true", help="no window: train, predict, print the accuracy"
    )

    add_export_parsers(sub)
    add_table_parsers(sub)

    s = sub.add_parser("gui", help="open the desktop application")
    s.add_argument("bundle", type=Path, nargs="?", help="a project to open (default: none)")

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
    _finish_subparsers(sub)
    return p
