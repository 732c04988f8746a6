"""A rolling deploy behind a balancer, under load: do users of the balancer see any failure?

Boots three test hosts with one TCP app each, starts HAProxy on the controller (127.0.0.1) with
the three as backends, and deploys a new version with serial 1. The batch hooks drain a host at
the balancer before its deploy and re-enable it after (hooks/drain.yml, hooks/ready.yml). The
controller loads the balancer and each backend directly all the while; the table gives each
target's failures, latencies and versions, then HAProxy's own per-server counts.

The exit status is 1 on any failed request, on an old version answering at the end, or when the
deploy fails.

Usage: python -m benchmarks.rolling [--keep] [--clients 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import _common as common
from benchmarks import haproxy_admin
from benchmarks.loadgen import Load, Target, format_table
from hostlab import lab
from hostlab.lab import Host

PREFIX = "roll"
APP_PORT = 8000
BALANCER_PORT = 18080
BACKEND = "app"
HOOKS = common.HERE / "hooks"
SOCKET = common.WORK / "haproxy.sock"
CONFIG = common.WORK / "haproxy.cfg"
# Ask HAProxy's stats for the counters that show failures it hid or suffered.
STAT_COLUMNS = ("status", "stot", "hrsp_5xx", "econ", "eresp", "wretr", "wredis", "chkdown")


def haproxy_config(hosts: list[Host]) -> str:
    """A balancer on 127.0.0.1 in front of the hosts' apps, with an admin socket."""
    servers = "".join(
        f"    server {h.name} {h.address}:{APP_PORT} check inter 500ms fall 2 rise 2\n"
        for h in hosts
    )
    return (
        "global\n"
        f"    stats socket {SOCKET} mode 600 level admin\n"
        "    maxconn 1000\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 5s\n"
        "    timeout client 60s\n"
        "    timeout server 60s\n"
        "    retries 2\n"
        "    option redispatch\n"
        "frontend bench\n"
        f"    bind 127.0.0.1:{BALANCER_PORT}\n"
        f"    default_backend {BACKEND}\n"
        f"backend {BACKEND}\n"
        "    balance roundrobin\n"
        "    option httpchk GET /healthz\n"
        "    http-check expect status 200\n"
        f"{servers}"
    )


def start_haproxy(hosts: list[Host]) -> subprocess.Popen:
    """Write the config and start HAProxy in the foreground; wait until its socket answers."""
    common.WORK.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(haproxy_config(hosts))
    SOCKET.unlink(missing_ok=True)
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(CONFIG)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"HAProxy exited with {proc.returncode}; see {CONFIG.name}")
        if SOCKET.exists() and all(
            haproxy_admin.server_row(str(SOCKET), BACKEND, h.name)["status"].startswith("UP")
            for h in hosts
        ):
            return proc
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("HAProxy did not see every backend UP within 30 s")


def app(version: str) -> dict:
    """The benchmark app at one version: a release directory made on the controller."""
    return {
        "name": "rtcp",
        "wsgi_app": "hello_wsgi:app",
        "packages": ["flask==3.1.3"],
        "workers": 2,
        "bind_type": "tcp",
        "bind_address": "0.0.0.0",
        "bind_port": APP_PORT,
        "source": {"type": "dir", "path": str(common.release(version))},
        "verify_path": "/healthz",
    }


def stats_table() -> str:
    """HAProxy's failure counters per server of the backend."""
    rows = [("server", *STAT_COLUMNS)]
    for row in haproxy_admin.stats(str(SOCKET)):
        if row.get("pxname") == BACKEND:
            rows.append((row["svname"], *(row.get(c, "") or "0" for c in STAT_COLUMNS)))
    return format_table(rows)


def rolling(hosts: list[Host], inventory: Path, clients: int) -> tuple[list[tuple], str, bool]:
    """Deploy version 2 host by host under load; return rows, HAProxy's counters, success."""
    first = common.playbook(inventory, {"gunicorn_apps": [app("1")]})
    if first.rc != 0:
        raise RuntimeError(f"Cannot deploy the first version:\n{first.tail()}")
    proc = start_haproxy(hosts)
    try:
        targets = [Target(f"http://127.0.0.1:{BALANCER_PORT}/", "balancer")] + [
            Target(f"http://{h.address}:{APP_PORT}/", h.name) for h in hosts
        ]
        extra = {
            "gunicorn_apps": [app("2")],
            "gunicorn_deploy_serial": 1,
            "gunicorn_deploy_before_batch": str(HOOKS / "drain.yml"),
            "gunicorn_deploy_after_batch": str(HOOKS / "ready.yml"),
            "bench_haproxy_admin": str(common.HERE / "haproxy_admin.py"),
            "bench_haproxy_socket": str(SOCKET),
            "bench_haproxy_backend": BACKEND,
        }
        with Load(targets, clients, max_seconds=1200, max_requests=2_000_000) as load:
            time.sleep(common.WARMUP)
            started = load.elapsed()
            run = common.playbook(inventory, extra, common.DEPLOY)
            ended = load.elapsed()
            time.sleep(common.SETTLE)
        result = load.stop()
        counters = stats_table()
    finally:
        proc.terminate()
        proc.wait(30)
    ok = run.rc == 0
    if not ok:
        print(f"deploy rc={run.rc}:\n{run.tail()}", file=sys.stderr)
    rows = []
    for target in targets:
        before = result.summary(target.label, until=started).versions
        after = result.summary(target.label, since=ended + common.GRACE).versions
        problems = []
        if result.summary(target.label).failed:
            problems.append("failures")
        if after != ["2"]:
            problems.append("want 2")
        if run.rc != 0:
            problems.append(f"run rc={run.rc}")
        ok = ok and not problems
        for line in common.failure_log(result, target.label, started):
            print(line, file=sys.stderr)
        verdict = "ok" if not problems else "FAIL: " + ", ".join(problems)
        rows.append(
            common.row(
                "rolling deploy",
                target.label,
                result,
                ",".join(before) or "-",
                ",".join(after) or "-",
                verdict,
            )
        )
    return rows, counters, ok


def main(argv: list[str] | None = None) -> int:
    """Run the rolling deploy and print both tables; exit 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rolling", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the test hosts up")
    parser.add_argument("--clients", type=int, default=4, help="client threads per target")
    args = parser.parse_args(argv)
    hosts, inventory = common.hosts(PREFIX, 3)
    try:
        rows, counters, ok = rolling(hosts, inventory, args.clients)
    finally:
        if not args.keep:
            lab.down(PREFIX)
    print(format_table([common.HEADER, *rows]))
    print()
    print(counters)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
