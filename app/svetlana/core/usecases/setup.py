"""Set up a project: create the bundle with its images and classes, all or nothing."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from svetlana.core.errors import InputError
from svetlana.core.project.bundle import SUFFIX, Project


def create_project(
    path: str | Path, pairs: Sequence[tuple[Path, Path, str]], classes: Sequence[str]
) -> Project:
    """Create the bundle, add the images; on failure remove what was created and re-raise."""
    from svetlana.core.project.images import prepare_images

    return create_prepared(path, prepare_images(pairs), classes)


def create_prepared(path: str | Path, prepared: Sequence, classes: Sequence[str]) -> Project:
    """Create the bundle from images already read (``prepare_image``): only writes, quick."""
    path = Path(path)
    if not path.name.endswith(SUFFIX):
        path = path.with_name(path.name + SUFFIX)
    existed = path.exists()
    classes = [c.strip() for c in classes if c.strip()]
    if len(set(classes)) != len(classes):
        raise InputError("class names must be different from each other")
    project = Project.create(path, classes)
    try:
        for item in prepared:
            project.add_prepared(item)
    except BaseException:
        project.close()
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return project
