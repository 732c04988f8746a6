"""gunicorn_info and its /proc helpers against a real Gunicorn started by the test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from ansible_collections.pyserve.gunicorn.plugins.module_utils import _gunicorn_proc as proc
from ansible_collections.pyserve.gunicorn.plugins.modules.gunicorn_info import main


@pytest.fixture
def server(venv):
    """A running Gunicorn master with two sync workers and a control socket."""
    root = Path(tempfile.mkdtemp(prefix="gunicorn-info-"))
    (root / "hello.py").write_text("def app(environ, start_response):\n    return []\n")
    conf = root / "gunicorn.conf.py"
    ctl = root / "gunicorn.ctl"
    conf.write_text(f"workers = 2\nbind = 'unix:{root}/http.sock'\ncontrol_socket = '{ctl}'\n")
    master = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "-c", str(conf), "hello:app"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        ctl.exists() and len(proc.children(master.pid)) >= 2
    ):
        time.sleep(0.1)
    yield {"pid": master.pid, "ctl": str(ctl), "conf": str(conf)}
    master.send_signal(signal.SIGTERM)
    master.wait(timeout=30)
    shutil.rmtree(root)


def test_proc_finds_the_workers_as_children_of_the_master(server):
    workers = proc.describe_workers(proc.children(server["pid"]))
    assert len(workers) == 2
    assert all(0 <= w["age"] < 60 for w in workers)
    assert all(abs(w["started"] - time.time()) < 60 for w in workers)


def test_proc_reads_config_path_and_version_from_the_command_line(server):
    argv = proc.cmdline(server["pid"])
    assert proc.config_path(argv) == server["conf"]
    assert proc.gunicorn_version(argv) == "27.0.1"


def test_config_path_forms():
    assert proc.config_path(["gunicorn", "--config=/etc/a.py"]) == "/etc/a.py"
    assert proc.config_path(["gunicorn", "-c", "a.py"], "/srv") == "/srv/a.py"
    assert proc.config_path(["gunicorn", "app:app"]) is None


def test_control_socket_lists_the_same_workers_as_proc(server):
    data = proc.control_request(server["ctl"], "show workers")
    assert sorted(w["pid"] for w in data["workers"]) == proc.children(server["pid"])


def test_module_reports_master_workers_and_listeners(run_module, server):
    result = run_module(main, {"name": "hello", "control_socket": server["ctl"]}, check_mode=True)
    assert result["changed"] is False
    assert result["master_pid"] == server["pid"]
    assert len(result["workers"]) == 2
    assert result["source"] == "control_socket"
    assert result["listeners"] and result["listeners"][0].startswith("unix:")
    assert result["config_path"] == server["conf"]
    assert result["gunicorn_version"] == "27.0.1"
    assert result["worker_generation_started"] == result["workers"][0]["started"]


def test_wait_for_sees_new_workers_after_a_hup(run_module, server):
    before = time.time()
    os.kill(server["pid"], signal.SIGHUP)
    args = {
        "name": "hello",
        "control_socket": server["ctl"],
        "expect_workers": 2,
        "wait_for": {"workers_newer_than": before},
        "timeout": 20,
    }
    result = run_module(main, args)
    assert result.get("failed") is not True, result
    assert all(w["started"] > before for w in result["workers"])


def test_wait_for_fails_after_timeout_with_what_it_saw(run_module, server):
    args = {
        "name": "hello",
        "control_socket": server["ctl"],
        "wait_for": {"workers_newer_than": time.time() + 3600},
        "timeout": 1,
    }
    result = run_module(main, args)
    assert result["failed"] is True
    assert "saw 0 of 2" in result["msg"]
    assert len(result["workers"]) == 2


def test_without_systemd_or_control_socket_nothing_is_found(run_module):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd is PID 1 here")
    result = run_module(main, {"name": "no-such-app"})
    assert result["service_state"] == "unknown"
    assert result["master_pid"] == 0
    assert result["workers"] == []
