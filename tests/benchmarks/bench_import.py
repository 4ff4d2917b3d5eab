"""import-labels speed: 8,000 labels into a 10,000-object image, in-process (target: about 1 s).

    python tests/benchmarks/bench_import.py

Prints the wall and CPU time of ``usecases.labels.import_labels`` (reading and checking the CSV, one batch journal
record, compaction), three repeats on fresh copies of the project.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from svetlana.core.project.bundle import Project
from svetlana.core.usecases.labels import import_labels


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    labels = np.zeros((500, 500), np.int32)
    ids = np.arange(1, 10001, dtype=np.int32).reshape(100, 100)
    labels.reshape(100, 5, 100, 5)[:, 1:4, :, 1:4] = ids[:, None, :, None]
    tifffile.imwrite(tmp / "big.tif", (labels > 0).astype(np.uint16) * 500 + 100)
    tifffile.imwrite(tmp / "big_masks.tif", labels)
    with Project.create(tmp / "p.svetlana", ["one", "two"]) as p:
        p.add_image(tmp / "big.tif", tmp / "big_masks.tif", name="big")
    chosen = np.random.default_rng(0).choice(ids.ravel(), 8000, replace=False)
    (tmp / "l.csv").write_text(
        "image,object,class\n"
        + "".join(f"big,{o},{'one' if k % 3 else 'two'}\n" for k, o in enumerate(chosen))
    )
    for rep in range(3):
        bundle = tmp / f"c{rep}.svetlana"
        shutil.copytree(tmp / "p.svetlana", bundle)
        with Project.open(bundle) as p:
            p.load("big")
            t, c = time.perf_counter(), time.process_time()
            n = import_labels(p, tmp / "l.csv")
            dt, dc = time.perf_counter() - t, time.process_time() - c
        print(f"import_labels: {n} labels in {dt:.2f} s ({dc:.2f} s of CPU)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
