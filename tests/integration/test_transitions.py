"""What a change does to a running app: nothing, a reload, or a restart; never a lost app."""

from __future__ import annotations

import pytest

from .conftest import APPS_DIR, http, main_pid, snapshot, wait_for_status

BASE = {
    "name": "tr-app",
    "wsgi_app": "hello_wsgi:app",
    "chdir": APPS_DIR,
    "packages": ["flask==3.1.3"],
    "workers": 2,
}


def app(**changes) -> dict:
    """The transition test app with some keys changed."""
    return {**BASE, **changes}


def worker_pids(host, name: str) -> set[int]:
    """The PIDs of the master's children."""
    out = host.run(f"pgrep -P $(systemctl show -p MainPID --value {name}.service)").stdout
    return {int(p) for p in out.split()}


@pytest.fixture(scope="module")
def running(host, converge):
    run = converge([app()])
    assert run.rc == 0, run
    assert wait_for_status(host, BASE) == 200
    return run


def test_no_change_does_nothing(host, converge, running):
    before = main_pid(host, "tr-app"), worker_pids(host, "tr-app")
    run = converge([app()])
    assert run.rc == 0 and run.changed == 0, run
    assert (main_pid(host, "tr-app"), worker_pids(host, "tr-app")) == before


def test_changing_workers_reloads_with_the_same_master(host, converge, running):
    master, old_workers = main_pid(host, "tr-app"), worker_pids(host, "tr-app")
    run = converge([app(workers=3)])
    assert run.rc == 0, run
    assert "reload (settings)" in run.output
    assert main_pid(host, "tr-app") == master
    new_workers = worker_pids(host, "tr-app")
    assert len(new_workers) == 3
    assert not new_workers & old_workers, "the reload must replace every worker"
    assert http(host, BASE)[0] == 200


def test_changing_preload_app_restarts(host, converge, running):
    master = main_pid(host, "tr-app")
    run = converge([app(workers=3, settings={"preload_app": True})])
    assert run.rc == 0, run
    assert "restart (settings preload_app)" in run.output
    assert main_pid(host, "tr-app") not in (0, master)
    assert http(host, BASE)[0] == 200


def test_changing_the_environment_restarts(host, converge, running):
    master = main_pid(host, "tr-app")
    run = converge(
        [app(workers=3, settings={"preload_app": True}, environment={"APP_VERSION": "2"})]
    )
    assert run.rc == 0, run
    assert main_pid(host, "tr-app") not in (0, master)
    assert '"version":"2"' in http(host, BASE)[1].replace(" ", "")


def test_a_typo_in_settings_fails_with_a_suggestion_and_changes_nothing(host, converge, running):
    master, before = main_pid(host, "tr-app"), snapshot(host)
    run = converge([app(settings={"worker": 8})])
    assert run.rc != 0
    assert "unknown setting 'worker'" in run.output
    assert "did you mean 'workers'?" in run.output
    assert main_pid(host, "tr-app") == master
    assert snapshot(host) == before
    assert http(host, BASE)[0] == 200


def test_an_app_that_cannot_import_fails_before_anything_changes(host, converge, running):
    master, before = main_pid(host, "tr-app"), snapshot(host)
    run = converge([app(wsgi_app="broken_app:app")])
    assert run.rc != 0
    assert "broken_app" in run.output
    assert main_pid(host, "tr-app") == master
    assert snapshot(host) == before
    assert http(host, BASE)[0] == 200


def test_switching_socket_to_tcp_and_back_moves_the_listener(host, converge, running):
    tcp = app(bind_type="tcp", bind_port=8111)
    run = converge([tcp])
    assert run.rc == 0, run
    assert http(host, tcp)[0] == 200
    assert http(host, BASE)[0] != 200, "the old Unix socket must stop answering"
    listening = host.run("systemctl show -p Listen --value tr-app.socket").stdout
    assert "8111" in listening and ".sock" not in listening

    run = converge([app()])
    assert run.rc == 0, run
    assert http(host, BASE)[0] == 200
    assert http(host, tcp)[0] != 200, "the TCP port must be closed again"

    run = converge([app()])
    assert run.changed == 0, run


def test_removing_one_of_two_apps_leaves_the_other_running(host, converge, running):
    other = {**BASE, "name": "tr-other", "bind_type": "tcp", "bind_port": 8112}
    run = converge([app(), other])
    assert run.rc == 0, run
    assert http(host, other)[0] == 200
    master = main_pid(host, "tr-app")

    run = converge([app(), {"name": "tr-other", "state": "absent"}])
    assert run.rc == 0, run
    assert http(host, other)[0] != 200
    gone = host.run(
        "ls /etc/systemd/system/tr-other.service /etc/systemd/system/tr-other.socket "
        "/etc/gunicorn/tr-other /srv/gunicorn/tr-other /etc/logrotate.d/gunicorn-tr-other"
    )
    assert gone.stdout == ""
    assert host.run("systemctl is-active tr-other.socket").stdout.strip() != "active"
    assert main_pid(host, "tr-app") == master
    assert http(host, BASE)[0] == 200

    run = converge([app(), {"name": "tr-other", "state": "absent"}])
    assert run.changed == 0, run


def test_check_mode_on_a_configured_host_changes_nothing(host, converge, running):
    converge([app()])
    run = converge([app()], check=True, diff=True)
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_check_mode_on_a_new_app_reports_changes_and_creates_nothing(host, converge, running):
    new = {**BASE, "name": "tr-new", "bind_type": "tcp", "bind_port": 8113}
    run = converge([new], check=True, diff=True)
    assert run.rc == 0, run
    assert run.changed > 0
    assert host.run("ls /etc/systemd/system/tr-new.service /srv/gunicorn/tr-new").stdout == ""
