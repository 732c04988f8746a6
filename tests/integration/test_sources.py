"""Code from a git repository and from a pip package: each deploy serves what the ref or the
pin names, and deploying the same ref or pin again changes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from .conftest import APPS_SRC, http, main_pid

DEPLOY = "pyserve.gunicorn.deploy"
WHEELS = "/srv/example-wheels"


def hello(version: str) -> str:
    """The example Flask app, reporting `version`."""
    return (
        (APPS_SRC / "hello_wsgi.py")
        .read_text()
        .replace('os.environ.get("APP_VERSION", "1")', repr(version))
    )


def version_of(host, app: dict) -> str:
    status, body = http(host, app)
    assert status == 200, body
    return json.loads(body)["version"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git repository on the controller with the app at tag v1, and v2 on main."""
    path = tmp_path_factory.mktemp("app-repo")
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.email", "tests@example.invalid")
    git(path, "config", "user.name", "tests")
    for label in ("v1", "v2"):
        (path / "hello_wsgi.py").write_text(hello(label))
        git(path, "add", "hello_wsgi.py")
        git(path, "commit", "--quiet", "-m", label)
        git(path, "tag", label)
    return path


def git_app(repo: Path, ref: str) -> dict:
    return {
        "name": "src-git",
        "wsgi_app": "hello_wsgi:app",
        "packages": ["flask==3.1.3"],
        "workers": 1,
        "bind_type": "tcp",
        "bind_port": 8131,
        "source": {"type": "git", "repo": str(repo), "ref": ref},
    }


def test_git_source_deploys_the_named_ref_and_moves_with_it(host, converge, repo):
    run = converge([git_app(repo, "v1")], playbook=DEPLOY)
    assert run.rc == 0, run
    assert version_of(host, git_app(repo, "v1")) == "v1"
    tree = git(repo, "rev-parse", "v1^{tree}")[:12]
    current = host.run("readlink /srv/gunicorn/src-git/current").stdout.strip()
    assert current == f"/srv/gunicorn/src-git/releases/{tree}"

    master = main_pid(host, "src-git")
    run = converge([git_app(repo, "main")], playbook=DEPLOY)
    assert run.rc == 0, run
    assert version_of(host, git_app(repo, "main")) == "v2"
    assert main_pid(host, "src-git") == master, "a code-only release reloads"


def test_git_source_at_the_same_ref_changes_nothing(host, converge, repo):
    run = converge([git_app(repo, "main")], playbook=DEPLOY)
    assert run.rc == 0 and run.changed == 0, run
    converge([{"name": "src-git", "state": "absent"}])


def wheel(directory: Path, version: str) -> Path:
    """A pure-Python wheel of the example app as package `hello-pkg`, built by hand."""
    dist = f"hello_pkg-{version}.dist-info"
    files = {
        "hello_pkg.py": hello(f"pkg-{version}"),
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: hello-pkg\nVersion: {version}\nRequires-Dist: flask\n"
        ),
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: pyserve-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    path = directory / f"hello_pkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def wheels(host, tmp_path_factory) -> str:
    """Two versions of the app's wheel in a find-links directory on the host."""
    local = tmp_path_factory.mktemp("wheels")
    host.run(f"install -d -m 0755 {WHEELS}", check=True)
    for version in ("1.0", "2.0"):
        path = wheel(local, version)
        subprocess.run(
            host.ssh_command(f"cat > {WHEELS}/{path.name}"),
            input=path.read_bytes(),
            check=True,
            capture_output=True,
        )
    return WHEELS


def pip_app(version: str) -> dict:
    return {
        "name": "src-pip",
        "wsgi_app": "hello_pkg:app",
        "packages": ["flask==3.1.3"],
        "workers": 1,
        "bind_type": "tcp",
        "bind_port": 8132,
        "source": {"type": "pip", "package": f"hello-pkg=={version}"},
    }


def test_pip_source_installs_the_pinned_package_and_upgrades_by_restart(host, converge, wheels):
    links = {"gunicorn_pip_extra_find_links": [wheels]}
    run = converge([pip_app("1.0")], playbook=DEPLOY, **links)
    assert run.rc == 0, run
    assert version_of(host, pip_app("1.0")) == "pkg-1.0"

    master = main_pid(host, "src-pip")
    run = converge([pip_app("2.0")], playbook=DEPLOY, **links)
    assert run.rc == 0, run
    assert "restart (new venv)" in run.output
    assert main_pid(host, "src-pip") not in (0, master)
    assert version_of(host, pip_app("2.0")) == "pkg-2.0"

    run = converge([pip_app("2.0")], playbook=DEPLOY, **links)
    assert run.rc == 0 and run.changed == 0, run
    converge([{"name": "src-pip", "state": "absent"}])
