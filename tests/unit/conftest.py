"""Shared fixtures: the collection on sys.path, a venv with a real Gunicorn, module runner."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "pyserve" / "gunicorn"
UNIT_VENV = REPO / ".cache" / "unit-venv"
GUNICORN_VERSION = os.environ.get("UNIT_GUNICORN_VERSION", "27.0.1")

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(os.path.relpath(REPO, LINK.parent))
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


@pytest.fixture(scope="session")
def venv() -> Path:
    """A throwaway venv holding the Gunicorn the modules are tested against."""
    python = UNIT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(UNIT_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import gunicorn; print(gunicorn.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != GUNICORN_VERSION:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"gunicorn=={GUNICORN_VERSION}"],
            check=True,
        )
    return UNIT_VENV


class ModuleExit(Exception):
    """Raised instead of sys.exit by a module, carrying its JSON result."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Return a function that runs a module's real main() and returns its result."""
    from ansible.module_utils import _internal
    from ansible.module_utils.testing import patch_module_args

    # Importing controller code (the filter tests do) flips this flag, which would send
    # module warnings to the controller's display instead of into the module result.
    monkeypatch.setattr(_internal, "is_controller", False)

    def run(main, args: dict[str, Any], check_mode: bool = False, diff: bool = False):
        full = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(full), contextlib.suppress(SystemExit):
            main()
        out = capsys.readouterr().out
        return json.loads(out.strip().splitlines()[-1])

    return run
