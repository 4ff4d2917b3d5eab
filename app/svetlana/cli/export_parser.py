"""The grammar of the sub-commands that take results out of a project: masks, patches,
models, measurements, tables, objects."""

from __future__ import annotations

from svetlana.cli.arguments import (
    SAVED_OR_NOW,
    bundle,
    csv_list,
    device,
    images,
    model,
    out_folder,
)


def add_export_parsers(sub) -> None:
    """Sub-commands that take results out of Svetlana (see core.exports)."""
    s = sub.add_parser(
        "export-mask",
        help="write the segmentation keeping only objects of chosen classes (original ids)",
    )
    bundle(s)
    s.add_argument("--keep", type=csv_list, default=[], help="classes to keep, comma separated")
    s.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="keep only objects predicted this surely (0 to 1)",
    )
    s.add_argument(
        "--per-class", action="store_true", help="also write one mask per class: IMAGE_CLASS.tif"
    )
    model(s)
    images(s)
    out_folder(s, "output folder (new, or from an earlier export-mask)")
    device(s, "where a CNN runs when it predicts now")

    s = sub.add_parser(
        "export-patches", help="write the labelled objects' patches and classes (npz, csv, tiff)"
    )
    bundle(s)
    out_folder(s)
    s.add_argument("--patch-size", default="auto", help="patch side in pixels, or auto")
    s.add_argument(
        "--tiff", action="store_true", help="also one TIFF per patch: CLASS/IMAGE_ID.tif"
    )

    s = sub.add_parser(
        "export-model",
        help="write a model as ONNX (runs without Svetlana) + weights.pt + card.json",
    )
    bundle(s)
    model(s)
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
    out_folder(s)


def add_table_parsers(sub) -> None:
    """Sub-commands that write tables of per-object measurements (see core.tables)."""
    s = sub.add_parser(
        "measure", help="measure every object (shape, intensity, texture): measurements.csv"
    )
    bundle(s)
    images(s)
    out_folder(s)

    s = sub.add_parser(
        "export-table",
        help="one CSV of every object: final class, probabilities, measurements; and a summary",
    )
    bundle(s)
    model(s, SAVED_OR_NOW)
    images(s)
    s.add_argument(
        "--summary",
        type=csv_list,
        help="measurements averaged per class in summary.csv (default: size and channel means)",
    )
    out_folder(s)

    s = sub.add_parser(
        "export-objects", help="object outlines with class and measurements for QuPath (GeoJSON)"
    )
    bundle(s)
    s.add_argument("--format", choices=("geojson",), default="geojson", help="file format")
    model(s, SAVED_OR_NOW)
    images(s)
    out_folder(s)
