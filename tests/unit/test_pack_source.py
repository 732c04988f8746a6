"""The controller-side packer of app sources: release IDs from content, and safe parallel use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "gunicorn" / "files" / "pack_source.py"


def pack(cache: Path, *args: str) -> dict:
    """Run the packer as the role does and return its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(cache), "app", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small app directory."""
    path = tmp_path / "src"
    path.mkdir()
    (path / "app.py").write_text("app = None\n")
    return path


@pytest.fixture
def origin(source: Path) -> Path:
    """A git repository of the app with one commit and a tag."""
    git(source, "init", "--quiet", "--initial-branch=main")
    git(source, "add", "app.py")
    git(source, "commit", "--quiet", "-m", "one")
    git(source, "tag", "v1")
    return source


def test_same_directory_content_gives_the_same_release(tmp_path, source):
    first = pack(tmp_path / "cache", "dir", str(source))
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (source / "app.pyc").write_bytes(b"\0")
    assert pack(tmp_path / "cache", "dir", str(source)) == first


def test_changed_code_gives_a_new_release(tmp_path, source):
    first = pack(tmp_path / "cache", "dir", str(source))
    (source / "app.py").write_text("app = 1\n")
    second = pack(tmp_path / "cache", "dir", str(source))
    assert second["id"] != first["id"]
    assert Path(second["archive"]).is_file() and Path(first["archive"]).is_file()


def test_git_release_is_the_tree_of_the_ref(tmp_path, origin):
    found = pack(tmp_path / "cache", "git", str(origin), "v1")
    assert found["id"] == git(origin, "rev-parse", "v1^{tree}")[:12]


def test_a_remote_repository_is_mirrored_and_follows_new_commits(tmp_path, origin):
    url = f"file://{origin}"
    first = pack(tmp_path / "cache", "git", url, "main")
    (origin / "app.py").write_text("app = 2\n")
    git(origin, "commit", "--quiet", "-am", "two")
    second = pack(tmp_path / "cache", "git", url, "main")
    assert second["id"] == git(origin, "rev-parse", "main^{tree}")[:12] != first["id"]


def test_many_hosts_packing_one_remote_repository_at_once_all_succeed(tmp_path, origin):
    """A fleet run packs each host's apps in parallel: the shared mirror must not break."""
    url = f"file://{origin}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: pack(tmp_path / "cache", "git", url, "v1"), range(16)))
    assert {f["id"] for f in found} == {git(origin, "rev-parse", "v1^{tree}")[:12]}


def test_pip_release_is_named_by_its_requirement(tmp_path):
    first = pack(tmp_path / "cache", "pip", "shop==1.4.2")
    assert first["archive"] is None
    assert pack(tmp_path / "cache", "pip", "shop==1.4.3")["id"] != first["id"]
