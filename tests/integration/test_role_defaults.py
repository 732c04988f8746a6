"""Role-level variables given on the command line (`-e gunicorn_worker_class=gevent`) apply to
every app that does not set its own value, and an app's own key still wins."""

from __future__ import annotations

import pytest

from .conftest import APPS_DIR, http, main_pid

# The WSGI app sets neither worker_class nor bind_type: it follows the role-level variables.
# The ASGI app sets both, so it stays on a Unix socket with the uvicorn worker.
FOLLOWS = {
    "name": "rd-wsgi",
    "wsgi_app": "hello_wsgi:app",
    "packages": ["flask==3.1.3"],
    "bind_port": 8135,
}
OWN = {
    "name": "rd-asgi",
    "wsgi_app": "hello_asgi:app",
    "worker_class": "uvicorn",
    "bind_type": "socket",
}
# No workers given: the sizing decides. Its sync workers are said to need more memory than the
# host has, so memory caps the pool at one worker, where any CPU count would give 3 or more.
HEAVY = {
    "name": "rd-heavy",
    "wsgi_app": "hello_wsgi:app",
    "worker_class": "sync",
    "packages": ["flask==3.1.3"],
    "bind_port": 8136,
    "worker_memory_mb": 1_000_000,
    "chdir": APPS_DIR,
}
APPS = [{**a, "workers": 1, "chdir": APPS_DIR} for a in (FOLLOWS, OWN)] + [HEAVY]
EXTRA_VARS = {"gunicorn_worker_class": "gevent", "gunicorn_bind_type": "tcp"}


def worker_in_use(host, name: str) -> str:
    """The worker class the running master names in its error log at start."""
    out = host.run(f"grep -h 'Using worker:' /var/log/gunicorn/{name}/error.log | tail -1")
    return out.stdout.strip().rpartition("Using worker: ")[2]


@pytest.fixture(scope="module")
def converged(host, converge):
    run = converge(APPS, **EXTRA_VARS)
    assert run.rc == 0, run
    yield run
    gone = converge([{"name": a["name"], "state": "absent"} for a in APPS])
    assert gone.rc == 0, gone


def test_app_without_its_own_keys_follows_the_role_level_variables(host, converged):
    assert http(host, {**FOLLOWS, "bind_type": "tcp"})[0] == 200
    assert worker_in_use(host, "rd-wsgi") == "gevent"
    listening = host.run("systemctl show -p Listen --value rd-wsgi.socket").stdout
    assert "127.0.0.1:8135" in listening and ".sock" not in listening


def test_app_with_its_own_keys_keeps_them(host, converged):
    assert http(host, OWN)[0] == 200
    assert worker_in_use(host, "rd-asgi") == "uvicorn_worker.UvicornWorker"


def test_the_same_variables_again_change_nothing(converge, converged):
    run = converge(APPS, **EXTRA_VARS)
    assert run.rc == 0 and run.changed == 0, run


def test_worker_memory_caps_the_computed_workers(host, converged):
    assert http(host, {**HEAVY, "bind_type": "tcp"})[0] == 200
    workers = host.run(f"pgrep -c -P {main_pid(host, 'rd-heavy')}").stdout.strip()
    assert workers == "1"
