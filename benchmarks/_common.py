"""Helpers the deploy benchmarks share: test hosts, playbook runs, releases, result rows."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadgen import Result, Target, format_failures
from hostlab import lab
from hostlab.lab import Host

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".cache" / "bench"
WHEELHOUSE = REPO / ".cache" / "wheelhouse"
APPS_SRC = REPO / "examples" / "apps"
HERE = Path(__file__).resolve().parent
CONVERGE = HERE / "converge.yml"
DEPLOY = "pyserve.gunicorn.deploy"
# Settle time around each measured action, so that the load sees the before and after states.
WARMUP = 3.0
SETTLE = 5.0
# Requests that start this long after the action ended must come from the new state.
GRACE = 1.0
PLAYBOOK_TIMEOUT = 900


def hosts(prefix: str, count: int) -> tuple[list[Host], Path]:
    """Reuse hosts `<prefix>1..count` when all run (left by --keep), else boot them afresh."""
    inventory = WORK / f"inventory-{prefix}.yml"
    names = [f"{prefix}{i}" for i in range(1, count + 1)]
    found = {h.name: h for h in lab.list_hosts() if h.name in names}
    if len(found) == count and all(lab.host_state(h) == "running" for h in found.values()):
        chosen = [found[n] for n in names]
        lab.write_inventory(chosen, inventory)
        return chosen, inventory
    lab.down(prefix)
    return lab.up(count, prefix, "bookworm", inventory), inventory


def release(version: str) -> Path:
    """A release directory on the controller whose hello_wsgi reports `version` by default."""
    path = WORK / "releases" / f"v{version}"
    text = (APPS_SRC / "hello_wsgi.py").read_text()
    changed = text.replace('os.environ.get("APP_VERSION", "1")', f'"{version}"')
    if changed == text:
        raise RuntimeError("Cannot make a release: the VERSION line of hello_wsgi.py changed")
    _write_release(path, changed)
    return path


def broken_release() -> Path:
    """A release directory whose hello_wsgi raises at import, like broken_app."""
    path = WORK / "releases" / "broken"
    _write_release(path, (APPS_SRC / "broken_app.py").read_text())
    return path


def _write_release(path: Path, text: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / "hello_wsgi.py").write_text(text)


@dataclass
class Run:
    """What one ansible-playbook run returned."""

    rc: int
    output: str

    def tail(self, lines: int = 40) -> str:
        """The last lines of the output, for an error message."""
        return "\n".join(self.output.splitlines()[-lines:])


def playbook(
    inventory: Path, extra: dict, play: str | Path = CONVERGE, limit: str | None = None
) -> Run:
    """Run a playbook with `extra` as JSON extra vars and the wheelhouse set."""
    WORK.mkdir(parents=True, exist_ok=True)
    vars_file = WORK / "vars.json"
    vars_file.write_text(json.dumps({"gunicorn_wheelhouse": str(WHEELHOUSE), **extra}))
    argv = [
        str(REPO / ".cache" / "venv" / "bin" / "ansible-playbook"),
        "-i",
        str(inventory),
        "-e",
        f"@{vars_file}",
        str(play),
    ]
    if limit:
        argv[1:1] = ["-l", limit]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=PLAYBOOK_TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


def row(event: str, label: str, result: Result, before: str, after: str, verdict: str) -> tuple:
    """One row of a benchmark table, for one target during one event."""
    summary = result.summary(label)
    return (
        event,
        label,
        str(summary.requests),
        format_failures(summary.failures),
        f"{summary.p50 * 1000:.1f}",
        f"{summary.p99 * 1000:.1f}",
        f"{summary.max * 1000:.1f}",
        f"{before} -> {after}",
        verdict,
    )


def stack(target: Target) -> dict[str, str]:
    """The versions of Gunicorn and werkzeug that answer at a target now, from one request."""
    conn = http.client.HTTPConnection(target.address, target.port, timeout=30)
    try:
        conn.request("GET", target.path)
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    if answer.status != 200:
        return {}
    found = json.loads(body).get("stack", {})
    # SERVER_SOFTWARE is Gunicorn's own "gunicorn/VERSION" of the running master.
    server = str(found.get("server", ""))
    return {"gunicorn": server.removeprefix("gunicorn/"), "werkzeug": str(found.get("werkzeug"))}


def failure_log(result: Result, label: str, started: float, limit: int = 5) -> list[str]:
    """The first failed requests of a target, with their time relative to the action's start."""
    failed = [s for s in result.samples.get(label, []) if s.failure][:limit]
    return [f"  {label}: t={s.start - started:+.2f} s {s.mode} {s.failure}" for s in failed]


HEADER = (
    "event",
    "target",
    "requests",
    "failures",
    "p50 ms",
    "p99 ms",
    "max ms",
    "version",
    "verdict",
)
