"""The role on Debian 13 (trixie, systemd 257, Python 3.13): apps of a WSGI and an ASGI worker
class answer, the units stay hardened, and a second run changes nothing."""

from __future__ import annotations

import pytest

from .conftest import APPS_DIR, Converger, http, put_example_apps

APPS = [
    {
        "name": "tx-gthread",
        "wsgi_app": "hello_wsgi:app",
        "worker_class": "gthread",
        "packages": ["flask==3.1.3"],
    },
    {
        "name": "tx-uvicorn",
        "wsgi_app": "hello_asgi:app",
        "worker_class": "uvicorn",
        "bind_type": "tcp",
        "bind_port": 8141,
    },
]
for _app in APPS:
    _app.update(workers=2, chdir=APPS_DIR)


@pytest.fixture(scope="module")
def trixie(hostlab, tmp_path_factory):
    """A trixie host with the example apps, and a converger for it."""
    (host,) = hostlab.up(1, prefix="itx", suite="trixie")
    put_example_apps(host)
    converge = Converger(host, hostlab.inventory_path, tmp_path_factory.mktemp("trixie"))
    run = converge(APPS)
    assert run.rc == 0, run
    yield host, converge
    hostlab.down("itx")


@pytest.mark.parametrize("app", APPS, ids=[a["name"] for a in APPS])
def test_app_answers_on_trixie(trixie, app):
    host, _ = trixie
    status, body = http(host, app)
    assert status == 200, body


def test_venvs_use_the_python_of_trixie(trixie):
    host, _ = trixie
    out = host.run(
        "/srv/gunicorn/tx-gthread/venv/bin/python -c 'import sys; print(sys.version_info[:2])'"
    )
    assert out.stdout.strip() == "(3, 13)"


@pytest.mark.parametrize("app", APPS, ids=[a["name"] for a in APPS])
def test_exposure_is_at_most_1_5_on_trixie(trixie, app):
    host, _ = trixie
    out = host.run(f"systemd-analyze security --no-pager {app['name']}.service | tail -1").stdout
    score = float(out.split("level for")[1].split(":", 1)[1].split()[0])
    assert score <= 1.5, out


def test_second_converge_on_trixie_changes_nothing(trixie):
    _, converge = trixie
    run = converge(APPS)
    assert run.rc == 0 and run.changed == 0, run
