"""The commands that make and use models: train, predict (thin: the work is in core.usecases)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from svetlana.cli.commands import open_bundle
from svetlana.cli.progress import EXIT_ERROR, EXIT_OK
from svetlana.core.jobs import CancelToken
from svetlana.core.wording import accuracy_estimate, plural


def cmd_train(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.ml.models import ARCHITECTURES
    from svetlana.core.ml.training import TrainingConfig
    from svetlana.core.usecases.train import estimate, train_project

    arch_file = None
    arch = a.arch
    kind = "cnn"
    if arch in ("auto", "forest"):
        kind, arch = arch, TrainingConfig().arch
    elif arch not in ARCHITECTURES:
        candidate = Path(arch)
        if not candidate.exists():
            raise InputError(
                f"--arch must be auto, forest, one of {', '.join(ARCHITECTURES)} or an existing "
                f"file, not {arch!r}"
            )
        arch_file, arch = candidate, "minimal"
    if a.time_budget is not None and not a.time_budget > 0:
        raise InputError(f"--time-budget must be a positive number of seconds, not {a.time_budget}")
    config = TrainingConfig.from_dict(
        {
            **TrainingConfig().to_dict(),
            "arch": arch,
            "epochs": a.epochs,
            "batch_size": a.batch_size,
            "lr": a.lr,
            "weight_decay": a.weight_decay,
            "loss": a.loss,
            "augment": a.augment,
            "val_fraction": a.val_fraction,
            "seed": a.seed,
            "device": a.device,
            "threads": a.threads,
        }
    )
    from svetlana.core.usecases.classes import rare_classes_warning

    with open_bundle(a.bundle) as project:
        warning = rare_classes_warning(project.annotations.counts())
        if warning:
            print(f"warning: {warning}", file=out)
        trained = train_project(
            project,
            config,
            patch_size=a.patch_size,
            name=a.name,
            arch_file=arch_file,
            progress=progress,
            cancel=cancel,
            kind=kind,
            budget_s=a.time_budget,
            mode=a.mode,
            announce=lambda job: print(f"training: {estimate(job)}", file=out, flush=True),
        )
    for line in selection_lines(trained.card):
        print(line, file=out)
    print(
        f"trained {trained.id}: {trained.card['architecture']}, "
        f"{plural(trained.card['n_labels'], 'label')}, "
        f"{accuracy_estimate(trained.card['metrics'])}, "
        f"{trained.card['seconds']:.1f} s on {trained.card['device']}",
        file=out,
    )
    print(trained.id, file=out)
    return EXIT_OK


def selection_lines(card: dict) -> list[str]:
    """The cross-validated comparison of the candidates, as printed by `svetlana train`."""
    sel = card.get("selection") or {}
    rows = sel.get("candidates") or []
    if not rows:
        return []
    cv = sel.get("cv") or {}
    how = f"{cv.get('folds', 0)}-fold {cv.get('method', 'cross-validation')}"
    if cv.get("grouped_by_image"):
        how += ", grouped by image"
    effort = f", {sel['effort']} mode, budget {sel['budget_s']:.0f} s" if sel.get("effort") else ""
    lines = [f"candidates ({how}{effort}; balanced accuracy on held-out folds):"]
    for r in rows:
        score = r.get("balanced_accuracy")
        n_folds = len(r.get("folds", []))
        if isinstance(score, float) and r.get("status") == "done":
            text = f"{score:.3f} ± {r.get('spread') or 0:.3f} over {n_folds} folds"
        elif isinstance(score, float):  # cut short: what it had reached
            text = f"{score:.3f} on {n_folds} fold{'s' if n_folds != 1 else ''} only"
        else:
            text = "-"
        mark = "*" if r.get("name") == sel.get("chosen") else " "
        note = ""
        if r.get("note"):  # a candidate run through: what it is; else why it was not
            note = (
                f"  {r['note']}" if r.get("status") == "done" else f"  {r['status']}: {r['note']}"
            )
        lines.append(f" {mark} {r['name']:<10} {text:<34} {r.get('seconds', 0):6.1f} s{note}")
    lines.append(f"chosen: {sel.get('chosen')} ({sel.get('reason', '')})")
    top = card.get("importances") or []
    if top:
        # here, not at the top: the words import the measurement registry and numpy, which
        # every other command (init, add, --help...) would pay for at start-up
        from svetlana.core.ml.column_words import measurement_words

        lines.append(
            "most important measurements: "
            + "; ".join(f"{measurement_words(t['name'])}: {t['importance']:.2f}" for t in top[:5])
        )
    return lines


def cmd_predict(a, out: TextIO, progress, cancel: CancelToken | None = None) -> int:
    from svetlana.core.errors import InputError
    from svetlana.core.usecases.predict import predict_folder, predict_project

    if a.folder is None:
        for flag in ("workers", "scheduler"):
            if getattr(a, flag) is not None:
                raise InputError(f"--{flag} works with --folder (a folder of image/mask pairs)")
        if a.resume:
            raise InputError("--resume works with --folder (a folder of image/mask pairs)")
    if a.folder is not None:
        if a.out is None:
            raise InputError("--folder needs --out DIR (the input folder is never written to)")
        if a.workers is not None and a.workers < 1:
            raise InputError(f"--workers must be at least 1 (got {a.workers})")
        with open_bundle(a.bundle, readonly=True) as project:
            mid = project.models.resolve(a.model)
            model_dir = project.models.dir(mid)
        run = predict_folder(
            model_dir,
            a.folder,
            a.out,
            axes=a.axes,
            device=a.device,
            workers=a.workers,
            scheduler=a.scheduler,
            resume=a.resume,
            progress=progress,
            cancel=cancel,
        )
    else:
        from svetlana.core.usecases.classes import class_mismatch

        with open_bundle(a.bundle) as project:
            mid = project.models.resolve(a.model)
            note = class_mismatch(project, project.models.card(mid).get("classes", ()))
            if note:
                print(f"note: {mid}: {note}", file=out)
            run = predict_project(
                project, mid, a.image, a.out, device=a.device, progress=progress, cancel=cancel
            )
    for image, counts in run.counts.items():
        print(f"{image}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=out)
    n_masks = len({p for p in run.files if p.name.endswith("_classes.tif") and p.is_file()})
    kept = f" ({run.resumed} kept from the earlier run)" if run.resumed else ""
    print(
        f"model {run.model_id}; wrote {run.out_dir / 'predictions.csv'} and {plural(n_masks, 'class mask')}{kept} in {run.seconds:.1f} s",
        file=out,
    )
    if run.errors:
        progress.close()
        err = getattr(progress, "stream", out)
        for _image, file, message in run.errors:
            print(f"error: {file}: {message}", file=err)
        print(
            f"{len(run.errors)} of {plural(len(run.errors) + len(run.counts), 'image')} failed; "
            f"listed in {run.out_dir / 'errors.csv'}",
            file=out,
        )
        return EXIT_ERROR
    return EXIT_OK
