"""Code deploys: releases, keyed venvs, the health gate, rollback and deploy hooks.

The releases are directories on the controller, deployed with the collection's deploy and
rollback playbooks. The tests run in order, each starting from where the one before left off.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import APPS_SRC, http, main_pid

NAME = "dp-app"
APP_DIR = f"/srv/gunicorn/{NAME}"
HOOK_LOG = f"/var/log/gunicorn/{NAME}/hooks.log"
DEPLOY = "pyserve.gunicorn.deploy"
ROLLBACK = "pyserve.gunicorn.rollback"
FLASK = ["flask==3.1.3", "werkzeug==3.1.8"]


def make_release(root: Path, label: str, healthy: bool = True, broken: bool = False) -> Path:
    """A release directory on the controller whose hello_wsgi reports version `label`."""
    path = root / label
    path.mkdir(parents=True, exist_ok=True)
    if broken:
        text = (APPS_SRC / "broken_app.py").read_text()
    else:
        text = (APPS_SRC / "hello_wsgi.py").read_text()
        text = text.replace('os.environ.get("APP_VERSION", "1")', repr(label))
        if not healthy:
            text = text.replace('return "ok", 200,', 'return "sick", 500,')
    (path / "hello_wsgi.py").write_text(text)
    return path


def app(source: Path, **changes) -> dict:
    """The deploy test app, from a release directory, with hooks that log where they ran."""
    return {
        "name": NAME,
        "wsgi_app": "hello_wsgi:app",
        "packages": FLASK,
        "workers": 2,
        "source": {"type": "dir", "path": str(source)},
        "verify_path": "/healthz",
        "verify_timeout": 15,
        "releases_keep": 3,
        "deploy_hooks": {
            "fleet": [f"echo fleet $(id -un) >> {HOOK_LOG}"],
            "before_switch": [f"echo before $PWD >> {HOOK_LOG}"],
            "after_switch": [f"echo after $(readlink -f .) >> {HOOK_LOG}"],
        },
        **changes,
    }


def version(host) -> str:
    """The version the app answers with through its socket."""
    status, body = http(host, {"name": NAME})
    assert status == 200, body
    return json.loads(body)["version"]


def link(host, path: str) -> str:
    return host.run(f"readlink {path}").stdout.strip()


def hook_log(host) -> list[str]:
    """The hook log's lines, emptied after reading."""
    lines = host.run(f"cat {HOOK_LOG} 2>/dev/null; : > {HOOK_LOG}").stdout.splitlines()
    return [line for line in lines if line]


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("releases")


@pytest.fixture(scope="module")
def first(host, converge, releases):
    run = converge([app(make_release(releases, "v1"))], playbook=DEPLOY)
    assert run.rc == 0, run
    return run


def test_first_deploy_serves_its_release_from_root_owned_code(host, first):
    assert version(host) == "v1"
    current = link(host, f"{APP_DIR}/current")
    assert current.startswith(f"{APP_DIR}/releases/")
    assert link(host, f"{APP_DIR}/venv").startswith(f"{APP_DIR}/venvs/")
    listing = host.run(
        f"stat -c '%U %a %n' {current} {current}/hello_wsgi.py $(readlink {APP_DIR}/venv)/bin"
    ).stdout.split("\n")
    assert all(line.startswith("root ") for line in listing if line), listing
    for target in (f"{current}/hello_wsgi.py", f"{APP_DIR}/venv/bin/python3", current):
        writable = host.run(f"runuser -u {NAME} -- test -w {target}")
        assert writable.returncode != 0, f"{NAME} can write {target}"
    lines = hook_log(host)
    assert lines[0] == f"fleet {NAME}", lines
    assert lines[1] == f"before {current}", lines
    assert lines[2] == f"after {current}", lines


def test_same_code_again_changes_nothing_and_runs_no_hook(host, converge, releases, first):
    master = main_pid(host, NAME)
    run = converge([app(make_release(releases, "v1"))], playbook=DEPLOY)
    assert run.rc == 0 and run.changed == 0, run
    assert main_pid(host, NAME) == master
    assert hook_log(host) == []


def test_new_release_reloads_the_same_master(host, converge, releases, first):
    master, old = main_pid(host, NAME), link(host, f"{APP_DIR}/current")
    venv = link(host, f"{APP_DIR}/venv")
    run = converge([app(make_release(releases, "v2"))], playbook=DEPLOY)
    assert run.rc == 0, run
    assert "reload (release)" in run.output
    assert main_pid(host, NAME) == master
    assert version(host) == "v2"
    new = link(host, f"{APP_DIR}/current")
    assert new != old and link(host, f"{APP_DIR}/current.previous") == old
    assert link(host, f"{APP_DIR}/venv") == venv, "a code-only release reuses its venv"
    assert hook_log(host) == [f"fleet {NAME}", f"before {new}", f"after {new}"]


def test_broken_release_is_never_switched_to(host, converge, releases, first):
    master, current = main_pid(host, NAME), link(host, f"{APP_DIR}/current")
    run = converge([app(make_release(releases, "broken", broken=True))], playbook=DEPLOY)
    assert run.rc != 0
    assert "Gunicorn rejected the new" in run.output, run
    assert link(host, f"{APP_DIR}/current") == current
    assert main_pid(host, NAME) == master
    assert version(host) == "v2"
    hook_log(host)


def test_release_that_fails_the_health_gate_is_rolled_back(host, converge, releases, first):
    current = link(host, f"{APP_DIR}/current")
    previous = link(host, f"{APP_DIR}/current.previous")
    run = converge([app(make_release(releases, "sick", healthy=False))], playbook=DEPLOY)
    assert run.rc != 0
    assert f"App {NAME} did not answer 200" in run.output, run
    assert "rolled back" in run.output and "Journal of" in run.output, run
    assert link(host, f"{APP_DIR}/current") == current
    assert link(host, f"{APP_DIR}/current.previous") == previous
    assert version(host) == "v2"
    hook_log(host)


def test_rollback_goes_back_one_release_and_forth_again(host, converge, releases, first):
    apps = [app(make_release(releases, "v2"))]
    run = converge(apps, playbook=ROLLBACK)
    assert run.rc == 0, run
    assert version(host) == "v1"
    run = converge(apps, playbook=ROLLBACK)
    assert run.rc == 0, run
    assert version(host) == "v2"


def test_dependency_change_restarts_into_a_new_venv(host, converge, releases, first):
    master, venv = main_pid(host, NAME), link(host, f"{APP_DIR}/venv")
    changed = app(make_release(releases, "v2"), packages=["flask==3.1.3", "werkzeug==3.1.9"])
    run = converge([changed], playbook=DEPLOY)
    assert run.rc == 0, run
    assert "restart (new venv)" in run.output
    assert main_pid(host, NAME) not in (0, master)
    assert link(host, f"{APP_DIR}/venv") != venv
    assert link(host, f"{APP_DIR}/venv.previous") == venv
    werkzeug = host.run(f"{APP_DIR}/venv/bin/pip show werkzeug").stdout
    assert "Version: 3.1.9" in werkzeug
    assert version(host) == "v2"
    # Back to the old dependencies: the old venv is still there, so nothing is built.
    run = converge([app(make_release(releases, "v2"))], playbook=DEPLOY)
    assert run.rc == 0, run
    assert link(host, f"{APP_DIR}/venv") == venv
    assert "BUILT" not in run.output
    hook_log(host)


def test_a_release_with_preload_app_restarts(host, converge, releases, first):
    preload = {"settings": {"preload_app": True}}
    run = converge([app(make_release(releases, "v2"), **preload)], playbook=DEPLOY)
    assert run.rc == 0, run
    master = main_pid(host, NAME)
    run = converge([app(make_release(releases, "v3"), **preload)], playbook=DEPLOY)
    assert run.rc == 0, run
    assert "restart (release with preload_app)" in run.output
    assert main_pid(host, NAME) not in (0, master)
    assert version(host) == "v3"
    hook_log(host)


def test_old_releases_are_pruned(host, converge, releases, first):
    for label in ("v4", "v5", "v6"):
        run = converge([app(make_release(releases, label))], playbook=DEPLOY)
        assert run.rc == 0, run
    assert version(host) == "v6"
    kept = host.run(f"ls -1 {APP_DIR}/releases").stdout.split()
    assert len(kept) == 3, kept
    live = link(host, f"{APP_DIR}/current").rsplit("/", 1)[1]
    previous = link(host, f"{APP_DIR}/current.previous").rsplit("/", 1)[1]
    assert {live, previous} <= set(kept)
    hook_log(host)
