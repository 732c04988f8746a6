"""The offline wheelhouse holds everything the test hosts install.

These tests build the wheelhouse (or reuse it when its stamp is current),
then install from it into fresh venvs with the package index switched off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO_ROOT / ".cache" / "wheelhouse"
COMPILED = ("gevent", "greenlet", "zope_interface", "markupsafe", "setproctitle")


def run_wheelhouse(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the wheelhouse command as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "hostlab.wheelhouse", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def offline_env() -> dict[str, str]:
    """Return an environment in which pip sees no index and no config files.

    Without this, a find-links or index set in the machine's pip config would
    quietly fill any gap in the wheelhouse and the tests would prove nothing.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def offline_venv(path: Path, *requirements: str) -> Path:
    """Create a venv at path, install requirements from the wheelhouse only, return its bin."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    bin_dir = path / "bin"
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(WHEELHOUSE),
            *requirements,
        ],
        env=offline_env(),
        check=True,
    )
    return bin_dir


def installed_version(bin_dir: Path, distribution: str) -> str:
    """Return the version of a distribution installed in a venv."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Build the default wheelhouse, or reuse it when it is up to date."""
    run_wheelhouse()
    return WHEELHOUSE


def test_second_run_downloads_nothing(wheelhouse: Path) -> None:
    before = {path.name: path.stat().st_mtime_ns for path in wheelhouse.glob("*.whl")}
    result = run_wheelhouse()
    after = {path.name: path.stat().st_mtime_ns for path in wheelhouse.glob("*.whl")}
    assert "up to date; nothing downloaded" in result.stdout
    assert after == before


def test_summary_lists_both_gunicorn_versions(wheelhouse: Path) -> None:
    result = run_wheelhouse()
    gunicorn_row = next(line for line in result.stdout.splitlines() if line.startswith("gunicorn "))
    assert "26.2.0, 27.0.1" in gunicorn_row


def test_gunicorn_27_installs_with_flask_offline(wheelhouse: Path, tmp_path: Path) -> None:
    bin_dir = offline_venv(tmp_path / "venv", "gunicorn==27.0.1", "flask")
    version = subprocess.run(
        [str(bin_dir / "gunicorn"), "--version"], capture_output=True, text=True, check=True
    )
    assert "27.0.1" in version.stdout
    assert installed_version(bin_dir, "flask").startswith("3.1.")


def test_gunicorn_26_installs_with_gevent_and_uvicorn_worker_offline(
    wheelhouse: Path, tmp_path: Path
) -> None:
    bin_dir = offline_venv(
        tmp_path / "venv", "gunicorn[gevent]==26.2.0", "uvicorn-worker", "setproctitle"
    )
    assert installed_version(bin_dir, "gunicorn") == "26.2.0"
    subprocess.run(
        [str(bin_dir / "python"), "-c", "import gevent, setproctitle, uvicorn_worker"], check=True
    )


def test_dependency_can_move_between_the_two_werkzeug_pins(
    wheelhouse: Path, tmp_path: Path
) -> None:
    bin_dir = offline_venv(tmp_path / "venv", "flask", "werkzeug==3.1.8")
    assert installed_version(bin_dir, "werkzeug") == "3.1.8"
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "werkzeug==3.1.9",
        ],
        env=offline_env(),
        check=True,
    )
    assert installed_version(bin_dir, "werkzeug") == "3.1.9"


@pytest.mark.parametrize("package", COMPILED)
def test_compiled_package_has_cp313_manylinux_wheel(wheelhouse: Path, package: str) -> None:
    wheels = [path.name for path in wheelhouse.glob(f"{package}-*-cp313-cp313-*.whl")]
    assert any("manylinux" in name for name in wheels), f"no cp313 wheel for {package}"


def test_changed_list_downloads_again(tmp_path: Path) -> None:
    requirements = tmp_path / "list.txt"
    dest = tmp_path / "wheels"
    requirements.write_text("packaging==26.4\n")
    common = ("--dest", str(dest), "--requirements", str(requirements), "--python", "3.11")
    run_wheelhouse(*common)
    assert "nothing downloaded" in run_wheelhouse(*common).stdout

    requirements.write_text("packaging==26.4\nh11==0.16.0\n")
    result = run_wheelhouse(*common)
    assert "nothing downloaded" not in result.stdout
    assert (dest / "h11-0.16.0-py3-none-any.whl").is_file()
