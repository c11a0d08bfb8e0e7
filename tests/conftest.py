import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: the first example of a test may load the compiled kernel, and CI machines are busy.
settings.register_profile("pfmbench", deadline=None, print_blob=True)
settings.load_profile("pfmbench")

from pfmbench.cli import main


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run `pfmbench ARGS` in-process through main() (with its error handling); returns code/out/err."""

    def run(*args):
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    yield
    sys.stdout.flush()


# The full public traces (docs/traces.md says where to download them): downloads/ in the project, or the
# folder PFMBENCH_TRACES names. Tests that need them skip without; tests/data holds their first 300 rows.
PUBLIC_TRACES = Path(os.environ.get("PFMBENCH_TRACES") or Path(__file__).resolve().parent.parent / "downloads")
