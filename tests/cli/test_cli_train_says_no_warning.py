"""`svetlana train` leaves no library warning on the terminal: scikit-learn's joblib threads
each swap the process's warning filters (not thread-safe before Python 3.14) and, racing, emptied
them: "`sklearn.utils.parallel.delayed` should be used with ..." then appeared on stderr. The
race is made likely here by switching threads every microsecond."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli_accuracy_is_the_models import oblique_bundle  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]

# Three trainings in one process (before the fix, one showed the warning 3 times in 4).
RUN = (
    "import sys; sys.setswitchinterval(1e-6); from svetlana.cli import main; "
    "[main(sys.argv[1:]) for _ in range(3)]"
)


def test_train_prints_no_warning_even_when_threads_switch_often(oblique_bundle):  # noqa: F811
    env = {"PYTHONPATH": str(ROOT / "app"), "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": ""}
    done = subprocess.run(
        [sys.executable, "-c", RUN, "-v", "train", str(oblique_bundle), "--arch", "forest"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "trained model-3" in done.stdout
    assert "Warning" not in done.stderr and "should be used with" not in done.stderr, done.stderr
