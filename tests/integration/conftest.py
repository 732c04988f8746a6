"""Fixtures of the role's integration tests: one real test host, and a way to converge it.

Every test here runs ansible-playbook against a systemd-nspawn host booted by hostlab and checks
what a user would see: HTTP answers through the socket or port, PIDs, file modes, the recap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostlab.lab import Host

REPO = Path(__file__).resolve().parents[2]
APPS_SRC = REPO / "examples" / "apps"
APPS_DIR = "/srv/example-apps"
WHEELHOUSE = REPO / ".cache" / "wheelhouse"
PLAYBOOK = Path(__file__).with_name("converge.yml")
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


@dataclass(repr=False)
class Run:
    """The outcome of one ansible-playbook run."""

    rc: int
    output: str
    changed: int
    failed: int

    def __repr__(self) -> str:
        return self.output[-6000:]


class Converger:
    """Runs the role on one host with the given variables."""

    def __init__(self, host: Host, inventory: Path, workdir: Path) -> None:
        self.host = host
        self.inventory = inventory
        self.workdir = workdir
        self.runs = 0

    def __call__(
        self,
        apps: list[dict],
        check: bool = False,
        diff: bool = False,
        playbook: str | Path = PLAYBOOK,
        **role_vars,
    ) -> Run:
        """Converge the host with `gunicorn_apps` = apps and any role-level variables, by the
        test playbook or by one of the collection's (`pyserve.gunicorn.deploy`)."""
        self.runs += 1
        extra = {"gunicorn_apps": apps, "gunicorn_wheelhouse": str(WHEELHOUSE), **role_vars}
        vars_file = self.workdir / f"vars-{self.runs}.json"
        vars_file.write_text(json.dumps(extra))
        argv = [
            str(REPO / ".cache" / "venv" / "bin" / "ansible-playbook"),
            "-i",
            str(self.inventory),
            "-l",
            self.host.name,
            "-e",
            f"@{vars_file}",
            str(playbook),
        ]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
        }
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
        output = proc.stdout + proc.stderr
        match = next((m for m in RECAP.finditer(output) if m.group(1) == self.host.name), None)
        changed = int(match.group(3)) if match else -1
        failed = int(match.group(5)) if match else -1
        return Run(proc.returncode, output, changed, failed)


def http(host: Host, app: dict, path: str = "/") -> tuple[int, str]:
    """GET `path` from an app through its socket or port, from inside the host."""
    if app.get("bind_type") == "tcp":
        target = f"http://127.0.0.1:{app['bind_port']}{path}"
        extra = ""
    else:
        target = f"http://localhost{path}"
        extra = f"--unix-socket {app.get('socket_path', '/run/gunicorn/' + app['name'] + '.sock')}"
    result = host.run(
        f"curl --silent --max-time 20 --write-out '\\n%{{http_code}}' {extra} {target}", timeout=60
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def main_pid(host: Host, name: str) -> int:
    """The MainPID systemd reports for NAME.service (0 when not running)."""
    out = host.run(f"systemctl show -p MainPID --value {name}.service").stdout.strip()
    return int(out or 0)


def snapshot(host: Host) -> str:
    """A listing of every file the role writes (path, mode, owner, size, mtime, checksum) and of
    the units, to prove that a failed run changed nothing. Directory times are left out: a
    check file written and removed beside the config touches its directory, not a file."""
    return host.run(
        "find /etc/systemd/system /etc/gunicorn /srv/gunicorn /etc/logrotate.d "
        "-xdev \\( -type f -o -type l \\) -not -path '*/venvs/*' "
        "-printf '%p %m %u %g %s %T@ %l\\n' | sort; md5sum /etc/gunicorn/*/* 2>&1; "
        "systemctl list-units --all --plain --no-legend 'it-*' 'tr-*' 2>&1 | sort"
    ).stdout


def wait_for_status(host: Host, app: dict, status: int = 200, timeout: float = 30) -> int:
    """Poll an app until it answers `status`; return the last status seen."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen, _ = http(host, app)
        if seen == status:
            return seen
        time.sleep(0.5)
    return seen


def put_example_apps(host: Host) -> None:
    """Copy the example apps into a shared, read-only directory of the host."""
    host.run(f"install -d -m 0755 {APPS_DIR}", check=True)
    for source in sorted(APPS_SRC.glob("*.py")):
        subprocess.run(
            host.ssh_command(
                f"cat > {APPS_DIR}/{source.name} && chmod 0644 {APPS_DIR}/{source.name}"
            ),
            input=source.read_bytes(),
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def host(hostlab) -> Iterator[Host]:
    """One bookworm host with the example apps in a shared, read-only directory."""
    (found,) = hostlab.up(1, prefix="it")
    put_example_apps(found)
    yield found


@pytest.fixture(scope="session")
def converge(host, hostlab, tmp_path_factory) -> Converger:
    """Converge the shared host: `converge(apps, check=False, diff=False, **role_vars)`."""
    return Converger(host, hostlab.inventory_path, tmp_path_factory.mktemp("converge"))
