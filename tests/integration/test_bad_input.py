"""Bad input fails before anything on the host changes, naming the app and the key."""

from __future__ import annotations

import pytest

from .conftest import APPS_DIR, snapshot

GOOD = {"name": "bad-a", "wsgi_app": "hello_wsgi:app", "chdir": APPS_DIR}

CASES = {
    "unknown worker class": (
        [{**GOOD, "worker_class": "fast"}],
        ["'bad-a'", "worker_class", "unknown worker class 'fast'"],
    ),
    "eventlet on gunicorn 27": (
        [{**GOOD, "worker_class": "eventlet"}],
        ["'bad-a'", "worker_class", "removed in Gunicorn 26"],
    ),
    "port out of range": (
        [{**GOOD, "bind_type": "tcp", "bind_port": 70000}],
        ["'bad-a'", "bind_port", "between 1 and 65535"],
    ),
    "missing wsgi_app": (
        [{"name": "bad-a"}],
        ["'bad-a'", "wsgi_app", "is required"],
    ),
    "two apps with one name": (
        [GOOD, {**GOOD, "bind_type": "tcp", "bind_port": 8120}],
        ["'bad-a'", "name", "used by two apps"],
    ),
    "two apps on one socket": (
        [GOOD, {**GOOD, "name": "bad-b", "socket_path": "/run/gunicorn/bad-a.sock"}],
        ["'bad-b'", "socket_path", "like app 'bad-a'"],
    ),
    "two apps on one port": (
        [
            {**GOOD, "bind_type": "tcp", "bind_port": 8121},
            {**GOOD, "name": "bad-b", "bind_type": "tcp", "bind_port": 8121},
        ],
        ["'bad-b'", "bind_port"],
    ),
    "name that is not a unit name": (
        [{**GOOD, "name": "my app"}],
        ["'my app'", "name", "not a valid unit name"],
    ),
    "a setting given twice": (
        [{**GOOD, "workers": 2, "settings": {"workers": 3}}],
        ["'bad-a'", "workers", "settings.workers"],
    ),
    "a setting the role manages": (
        [{**GOOD, "settings": {"bind": "0.0.0.0:80"}}],
        ["'bad-a'", "settings.bind", "bind_type"],
    ),
    "an unknown app key": (
        [{**GOOD, "worker": 3}],
        ["gunicorn_apps", "worker"],
    ),
}


@pytest.mark.parametrize("apps, expected", CASES.values(), ids=CASES.keys())
def test_bad_input_fails_before_any_change(host, converge, apps, expected):
    before = snapshot(host)
    run = converge(apps)
    assert run.rc != 0, run
    for text in expected:
        assert text in run.output, run
    assert snapshot(host) == before
    assert "changed=0" in run.output


@pytest.mark.parametrize("playbook", ["pyserve.gunicorn.deploy", "pyserve.gunicorn.rollback"])
def test_deploy_and_rollback_playbooks_check_their_input_too(host, converge, playbook):
    before = snapshot(host)
    run = converge([{**GOOD, "workers": "many"}], playbook=playbook)
    assert run.rc != 0, run
    assert "Validation of arguments failed" in run.output, run
    assert "'workers'" in run.output and "gunicorn_apps" in run.output, run
    assert snapshot(host) == before
