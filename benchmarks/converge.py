"""What a run of the role costs, and how hardened each worker class's unit is.

Boots one test host and times, with the role's own test apps:
- the first converge of one Flask app on a fresh host (venv built from the wheelhouse);
- no-change re-runs of that app (the run users make most often), with their changed count;
- the first converge and a no-change re-run of six apps, one per worker class;
then prints `systemd-analyze security` of each app's service, and the slowest tasks of the last
no-change run. Numbers are measured, never asserted: the exit status is 1 only when a run
failed or a re-run changed something.

Usage: python -m benchmarks.converge [--reruns 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import _common as common
from benchmarks.loadgen import format_table
from hostlab import lab
from hostlab.lab import Host

PREFIX = "conv"
APPS_DIR = "/srv/example-apps"
TIMES = common.WORK / "task-times.json"
RECAP = re.compile(r"^\S+\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)
FLASK = ["flask==3.1.3"]
ONE = [{"name": "c-sync", "wsgi_app": "hello_wsgi:app", "packages": FLASK, "workers": 2}]
CLASSES = [
    {"name": "c-sync", "wsgi_app": "hello_wsgi:app", "worker_class": "sync", "packages": FLASK},
    {"name": "c-gthread", "wsgi_app": "hello_wsgi:app", "worker_class": "gthread",
     "packages": FLASK},
    {"name": "c-gevent", "wsgi_app": "hello_wsgi:app", "worker_class": "gevent",
     "packages": FLASK},
    {"name": "c-uvicorn", "wsgi_app": "hello_asgi:app", "worker_class": "uvicorn",
     "bind_type": "tcp", "bind_port": 8201},
    {"name": "c-asgi", "wsgi_app": "hello_asgi:app", "worker_class": "asgi",
     "bind_type": "tcp", "bind_port": 8202},
    {"name": "c-isolated", "wsgi_app": "hello_wsgi:app", "packages": FLASK,
     "hardening": "isolated"},
]  # fmt: skip
for _app in CLASSES:
    _app.update(workers=2, chdir=APPS_DIR)
ONE[0]["chdir"] = APPS_DIR


def copy_apps(host: Host) -> None:
    """Put the example apps in a read-only directory on the host."""
    host.run(f"install -d -m 0755 {APPS_DIR}", check=True)
    for source in sorted(common.APPS_SRC.glob("*.py")):
        subprocess.run(
            host.ssh_command(f"cat > {APPS_DIR}/{source.name}"),
            input=source.read_bytes(),
            check=True,
            capture_output=True,
        )


def timed(inventory: Path, apps: list[dict]) -> tuple[float, int, int, bool]:
    """Converge `apps`; return seconds, tasks run, changed count, success."""
    os.environ["PYSERVE_TASK_TIMES"] = str(TIMES)
    os.environ["ANSIBLE_CALLBACK_PLUGINS"] = str(common.HERE / "callback_plugins")
    os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "task_timer"
    started = time.monotonic()
    run = common.playbook(inventory, {"gunicorn_apps": apps})
    seconds = time.monotonic() - started
    match = RECAP.search(run.output)
    if run.rc != 0 or not match:
        print(run.tail(), file=sys.stderr)
        return seconds, 0, -1, False
    return seconds, int(match.group(1)), int(match.group(2)), True


def exposure(host: Host, name: str) -> str:
    """The overall exposure level systemd-analyze gives the app's service."""
    out = host.run(f"systemd-analyze security --no-pager {name}.service | tail -1").stdout
    found = re.search(r":\s+([0-9.]+)\s+(\S+)", out)
    return f"{found.group(1)} {found.group(2)}" if found else out.strip()


def main(argv: list[str] | None = None) -> int:
    """Run the timed converges and print the tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.converge", description=__doc__)
    parser.add_argument("--reruns", type=int, default=3, help="no-change re-runs to time")
    parser.add_argument("--keep", action="store_true", help="leave the test host up")
    args = parser.parse_args(argv)
    (host,), inventory = common.hosts(PREFIX, 1)
    rows = [("run", "apps", "seconds", "tasks ok", "changed")]
    ok = True
    try:
        copy_apps(host)
        plan = [("first converge", ONE)]
        plan += [(f"no-change re-run {i}", ONE) for i in range(1, args.reruns + 1)]
        plan += [("first converge, 5 more apps", CLASSES), ("no-change re-run", CLASSES)]
        for label, apps in plan:
            seconds, tasks, changed, success = timed(inventory, apps)
            rerun = label.startswith("no-change")
            ok = ok and success and (changed == 0 or not rerun)
            rows.append((label, str(len(apps)), f"{seconds:.1f}", str(tasks), str(changed)))
        slowest = sorted(json.loads(TIMES.read_text()), key=lambda t: -t[1])[:8]
        scores = [("app", "worker class", "hardening", "systemd-analyze security")]
        scores += [
            (a["name"], a.get("worker_class", "sync"), a.get("hardening", "strict"),
             exposure(host, a["name"]))
            for a in CLASSES
        ]  # fmt: skip
    finally:
        if not args.keep:
            lab.down(PREFIX)
    print(format_table(rows))
    print()
    print(format_table(scores))
    print()
    print(format_table([("slowest tasks of the last no-change run", "seconds")]
                       + [(name, f"{sec:.2f}") for name, sec in slowest]))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
