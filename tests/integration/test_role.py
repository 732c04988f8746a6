"""The role on a real host: every worker class answers, survives restarts, and is hardened."""

from __future__ import annotations

import pytest

from .conftest import APPS_DIR, http, main_pid, wait_for_status

FLASK = ["flask==3.1.3"]
# One app per worker class. The WSGI apps listen on Unix sockets, the ASGI apps on TCP; the
# uvicorn app names the deprecated class path on purpose: the role must accept it.
APPS = [
    {"name": "it-sync", "wsgi_app": "hello_wsgi:app", "worker_class": "sync", "packages": FLASK},
    {
        "name": "it-gthread",
        "wsgi_app": "hello_wsgi:app",
        "worker_class": "gthread",
        "threads": 4,
        "packages": FLASK,
    },
    {
        "name": "it-gevent",
        "wsgi_app": "hello_wsgi:app",
        "worker_class": "gevent",
        "packages": FLASK,
    },
    {
        "name": "it-uvicorn",
        "wsgi_app": "hello_asgi:app",
        "worker_class": "uvicorn.workers.UvicornWorker",
        "bind_type": "tcp",
        "bind_port": 8101,
    },
    {
        "name": "it-asgi",
        "wsgi_app": "hello_asgi:app",
        "worker_class": "asgi",
        "bind_type": "tcp",
        "bind_address": "0.0.0.0",
        "bind_port": 8102,
    },
    {
        "name": "it-isolated",
        "wsgi_app": "hello_wsgi:app",
        "packages": FLASK,
        "hardening": "isolated",
        "environment": {"APP_VERSION": "iso", "SECRET_TOKEN": "s3cr3t-never-printed"},
    },
]
for app in APPS:
    app.setdefault("workers", 2)
    app["chdir"] = APPS_DIR
IDS = [a["name"] for a in APPS]


@pytest.fixture(scope="module")
def deployed(host, converge):
    """All six apps converged once; the result of that first run."""
    run = converge(APPS, diff=True)
    assert run.rc == 0, run
    return run


@pytest.mark.parametrize("app", APPS, ids=IDS)
def test_each_worker_class_answers_through_its_listener(host, deployed, app):
    status, body = http(host, app)
    assert status == 200, body
    assert '"version"' in body


def test_tcp_app_bound_to_all_addresses_answers_from_outside_the_host(host, deployed):
    import urllib.request

    with urllib.request.urlopen(f"http://{host.address}:8102/healthz", timeout=10) as answer:
        assert answer.status == 200


def test_second_converge_changes_nothing(converge, deployed):
    run = converge(APPS)
    assert run.rc == 0, run
    assert run.changed == 0, run


@pytest.mark.parametrize("app", APPS, ids=IDS)
def test_exposure_score_is_at_most_1_5(host, deployed, app):
    out = host.run(f"systemd-analyze security --no-pager {app['name']}.service | tail -1").stdout
    score = float(out.split("level for")[1].split(":", 1)[1].split()[0])
    limit = 1.0 if app.get("hardening") == "isolated" else 1.5
    assert score <= limit, out


@pytest.mark.parametrize(
    "action",
    [
        "systemctl restart {name}.service",
        "systemctl reload {name}.service",
        "systemctl stop {name}.socket {name}.service && systemctl start {name}.socket",
        "systemctl stop {name}.service && systemctl start {name}.service",
    ],
    ids=["restart", "reload", "socket-stop-start", "service-stop-start"],
)
@pytest.mark.parametrize("app", [APPS[0], APPS[3]], ids=["unix-socket", "tcp"])
def test_still_answers_after_systemctl(host, deployed, action, app):
    result = host.run(action.format(name=app["name"]))
    assert result.returncode == 0, result.stderr
    assert wait_for_status(host, app) == 200


@pytest.mark.parametrize("app", [APPS[0], APPS[3]], ids=["unix-socket", "tcp"])
def test_listener_stays_open_through_a_restart_of_the_service(host, deployed, app):
    """The same listener, not a new one: connections in its backlog are kept, none refused."""
    since = f"systemctl show -p ActiveEnterTimestampMonotonic --value {app['name']}.socket"
    before = host.run(since).stdout.strip()
    inode = host.run("stat -c %i /run/gunicorn/it-sync.sock").stdout.strip()
    host.run(f"systemctl restart {app['name']}.service", check=True)
    assert host.run(since).stdout.strip() == before, "the socket unit was restarted"
    assert host.run("stat -c %i /run/gunicorn/it-sync.sock").stdout.strip() == inode
    assert wait_for_status(host, app) == 200


def test_every_app_answers_after_a_reboot(host, deployed):
    host.reboot_and_wait()
    for app in APPS:
        assert wait_for_status(host, app, timeout=60) == 200, app["name"]


def test_services_are_enabled_so_they_start_at_boot(host, deployed):
    names = " ".join(f"{a['name']}.service {a['name']}.socket" for a in APPS)
    out = host.run(f"systemctl is-enabled {names}").stdout.split()
    assert out == ["enabled"] * (2 * len(APPS))


def test_stop_timeout_exceeds_graceful_timeout(host, deployed):
    out = host.run("systemctl show -p TimeoutStopUSec --value it-sync.service").stdout.strip()
    assert out == "45s"  # graceful_timeout 30 s + 15 s for the master to reap its workers


def test_each_app_has_its_own_control_socket(host, deployed):
    for app in APPS:
        assert host.run(f"test -S /run/gunicorn-{app['name']}/control.sock").returncode == 0


def test_unix_socket_is_owned_for_the_reverse_proxy(host, deployed):
    out = host.run("stat -c '%U %G %a' /run/gunicorn/it-sync.sock").stdout.split()
    assert out == ["it-sync", "www-data", "660"]


def test_environment_file_is_private_and_values_are_never_printed(host, deployed):
    assert "s3cr3t-never-printed" not in deployed.output
    stat = host.run("stat -c '%U %G %a' /etc/gunicorn/it-isolated/environment").stdout.split()
    assert stat == ["root", "it-isolated", "640"]
    status, body = http(host, APPS[5], "/env/SECRET_TOKEN")
    assert status == 200 and "true" in body


def test_code_and_venv_are_not_writable_by_the_app_user(host, deployed):
    result = host.run(
        "setpriv --reuid=it-sync --regid=it-sync --init-groups "
        "touch /srv/gunicorn/it-sync/venv/bin/x /etc/gunicorn/it-sync/x"
    )
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


def test_log_rotation_reopens_files_and_loses_no_line(host, deployed):
    app = APPS[0]
    log = "/var/log/gunicorn/it-sync/access.log"
    assert http(host, app, "/healthz?before")[0] == 200
    host.run("logrotate -f /etc/logrotate.d/gunicorn-it-sync", check=True)
    assert http(host, app, "/healthz?after")[0] == 200
    # The access log line is written when the response is done; give the worker a moment.
    assert wait_for_line(host, log, "/healthz?after")
    assert host.run(f"grep -c 'healthz?before' {log}.1").stdout.strip() == "1"
    assert main_pid(host, "it-sync") > 0


def wait_for_line(host, path: str, text: str, tries: int = 20) -> bool:
    """Whether `text` shows up in the file `path` within a few seconds."""
    for _ in range(tries):
        if host.run(f"grep -q '{text}' {path}").returncode == 0:
            return True
        host.run("sleep 0.25")
    return False
