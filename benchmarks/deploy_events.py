"""What users see while the role changes a running app: one test host, continuous load.

Boots a test host, enables nginx there on port 8080 in front of a socket app (`bsock`), deploys
it and a TCP app (`btcp`, port 8000 on every address) with the role, then runs each event while
the controller loads `http://HOST:8080/` and `http://HOST:8000/`. A row per event and target
gives requests, failures, latencies and the version that answered before and after.

The exit status is 1 when any event had a failed request, when the wrong version answered after
an event, or when a run did not end as expected (event 8 must fail and roll back).

Usage: python -m benchmarks.deploy_events [--events 1,6,7] [--keep] [--clients 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import _common as common
from benchmarks.loadgen import Load, Target, format_table
from hostlab import lab
from hostlab.lab import Host

PREFIX = "bench"
NGINX_PORT = 8080
TCP_PORT = 8000
NGINX_SITE = f"""server {{
    listen {NGINX_PORT};
    location / {{
        proxy_pass http://unix:/run/gunicorn/bsock.sock;
        proxy_set_header Host $host;
    }}
}}
"""


@dataclass(frozen=True)
class State:
    """What the apps on the host are meant to run."""

    workers: int = 2
    preload_app: bool = False
    werkzeug: str = "3.1.8"
    gunicorn: str = "26.2.0"
    release: str = "1"


def apps(state: State) -> list[dict]:
    """The two benchmark apps for a state; their code is a release made on the controller."""
    common_keys: dict = {
        "wsgi_app": "hello_wsgi:app",
        "packages": ["flask==3.1.3", f"werkzeug=={state.werkzeug}"],
        "gunicorn_version": state.gunicorn,
        "workers": state.workers,
        "settings": {"preload_app": state.preload_app},
    }
    path = common.broken_release() if state.release == "broken" else common.release(state.release)
    common_keys["source"] = {"type": "dir", "path": str(path)}
    common_keys.update(verify_path="/healthz", verify_status=200, verify_timeout=30)
    return [
        {"name": "bsock", **common_keys},
        {
            "name": "btcp",
            "bind_type": "tcp",
            "bind_address": "0.0.0.0",
            "bind_port": TCP_PORT,
            **common_keys,
        },
    ]


@dataclass
class Event:
    """A change made under load: `prepare` is applied unmeasured, `change` under load."""

    number: int
    name: str
    prepare: Callable[[State], State]
    change: Callable[[State], State] | None = None
    command: str = ""
    must_fail: bool = False


def next_release(state: State) -> str:
    """The release number after the state's one."""
    return str(int(state.release) + 1) if state.release.isdigit() else "2"


EVENTS = {
    e.number: e
    for e in [
        Event(
            1, "config change (workers 2->3)", lambda s: replace(s, workers=2),
            lambda s: replace(s, workers=3),
        ),
        Event(
            2, "code deploy, preload_app off", lambda s: replace(s, preload_app=False),
            lambda s: replace(s, release=next_release(s)),
        ),
        Event(
            3, "code deploy, preload_app on", lambda s: replace(s, preload_app=True),
            lambda s: replace(s, release=next_release(s)),
        ),
        Event(
            4, "werkzeug 3.1.8 -> 3.1.9", lambda s: replace(s, werkzeug="3.1.8"),
            lambda s: replace(s, werkzeug="3.1.9"),
        ),
        Event(
            5, "gunicorn 26.2.0 -> 27.0.1", lambda s: replace(s, gunicorn="26.2.0"),
            lambda s: replace(s, gunicorn="27.0.1"),
        ),
        Event(6, "systemctl restart", lambda s: s, command="systemctl restart bsock btcp"),
        Event(
            7, "logrotate -f", lambda s: s,
            command="logrotate -f /etc/logrotate.d/gunicorn-bsock && "
            "logrotate -f /etc/logrotate.d/gunicorn-btcp",
        ),
        Event(
            8, "broken code, rolled back", lambda s: s, lambda s: replace(s, release="broken"),
            must_fail=True,
        ),
    ]
}  # fmt: skip


def stack_change(before: dict[str, str], after: dict[str, str]) -> str:
    """What changed in the server stack, for the version column: ` (werkzeug 3.1.8 -> 3.1.9)`."""
    changes = [
        f"{key} {before.get(key, '?')} -> {value}"
        for key, value in after.items()
        if before.get(key) != value
    ]
    return f" ({', '.join(changes)})" if changes else ""


class Bench:
    """The test host, the apps' applied state, and the rows measured so far."""

    def __init__(self, host: Host, inventory: Path, clients: int) -> None:
        self.host = host
        self.inventory = inventory
        self.clients = clients
        self.state: State | None = None
        self.rows: list[tuple] = []
        self.ok = True

    def converge(self, state: State) -> common.Run:
        """Apply a state with the role, or with the deploy playbook for a code change."""
        code_change = self.state is not None and state.release != self.state.release
        play = common.DEPLOY if code_change else common.CONVERGE
        return common.playbook(self.inventory, {"gunicorn_apps": apps(state)}, play)

    def setup(self) -> None:
        """Deploy the first state, enable nginx in front of the socket app."""
        first = State()
        run = self.converge(first)
        if run.rc != 0:
            raise RuntimeError(f"Cannot deploy the benchmark apps:\n{run.tail()}")
        self.state = first
        site = "/etc/nginx/sites-available/bench"
        self.host.run(
            f"cat > {site} <<'EOF'\n{NGINX_SITE}EOF\n"
            f"ln -sfn {site} /etc/nginx/sites-enabled/bench && "
            "systemctl enable nginx && systemctl restart nginx && "
            f"for i in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:{NGINX_PORT}/healthz "
            "&& exit 0; sleep 0.2; done; exit 1",
            check=True,
        )
        # A reload right before the load would make nginx's old workers close the load's
        # first keep-alive connections: start it once, and let the first event begin later.
        time.sleep(common.SETTLE)

    def targets(self) -> list[Target]:
        """nginx in front of the socket app, and the TCP app, both on the host."""
        return [
            Target(f"http://{self.host.address}:{NGINX_PORT}/", "nginx->bsock"),
            Target(f"http://{self.host.address}:{TCP_PORT}/", "btcp"),
        ]

    def run_event(self, event: Event) -> list[str]:
        """Prepare unmeasured, then make the change under load and add its rows.

        Returns what went wrong, one line per target with a problem: failed requests, the
        wrong version answering afterwards, or a run that did not end as the event expects.
        """
        assert self.state is not None
        prepared = event.prepare(self.state)
        if prepared != self.state:
            run = self.converge(prepared)
            if run.rc != 0:
                raise RuntimeError(f"Cannot prepare event {event.number}:\n{run.tail()}")
            self.state = prepared
        wanted = event.change(self.state) if event.change else self.state
        targets = self.targets()
        stacks = {target.label: common.stack(target) for target in targets}
        with Load(targets, self.clients, max_seconds=1200, max_requests=2_000_000) as load:
            time.sleep(common.WARMUP)
            started = load.elapsed()
            if event.command:
                done = self.host.run(event.command, timeout=300)
                run = common.Run(done.returncode, done.stdout + done.stderr)
            else:
                run = self.converge(wanted)
            ended = load.elapsed()
            time.sleep(common.SETTLE)
        result = load.stop()
        succeeded = run.rc == 0
        if succeeded:
            self.state = wanted
        expected = self.state.release
        expected_stack = {"gunicorn": self.state.gunicorn, "werkzeug": self.state.werkzeug}
        title = f"{event.number} {event.name}"
        found: list[str] = []
        for target in targets:
            before = result.summary(target.label, until=started)
            after = result.summary(target.label, since=ended + common.GRACE)
            stack = common.stack(target)
            problems = []
            if result.summary(target.label).failed:
                problems.append("failures")
            if after.versions != [expected]:
                problems.append(f"want {expected}")
            if stack != expected_stack:
                problems.append(f"want {expected_stack}, got {stack}")
            if succeeded == event.must_fail:
                problems.append(f"run rc={run.rc}")
            self.ok = self.ok and not problems
            if problems:
                found.append(f"{target.label}: {', '.join(problems)}")
            for line in common.failure_log(result, target.label, started):
                print(f"event {event.number}:{line}", file=sys.stderr)
            verdict = "ok" if not problems else "FAIL: " + ", ".join(problems)
            self.rows.append(
                common.row(
                    title,
                    target.label,
                    result,
                    ",".join(before.versions) or "-",
                    (",".join(after.versions) or "-") + stack_change(stacks[target.label], stack),
                    verdict,
                )
            )
        if succeeded == event.must_fail:
            print(f"event {event.number}: playbook rc={run.rc}:\n{run.tail()}", file=sys.stderr)
        return found

    def table(self) -> str:
        """The rows measured so far, under the header."""
        return format_table([common.HEADER, *self.rows])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen events, print the table; exit 1 on any failure or wrong version."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy_events", description=__doc__)
    parser.add_argument("--events", default="1,2,3,4,5,6,7,8", help="comma-separated numbers")
    parser.add_argument("--keep", action="store_true", help="leave the test host up")
    parser.add_argument("--clients", type=int, default=4, help="client threads per target")
    args = parser.parse_args(argv)
    try:
        chosen = [EVENTS[int(n)] for n in args.events.split(",")]
    except (KeyError, ValueError):
        parser.error(f"--events takes numbers from 1 to {len(EVENTS)}, e.g. 1,6,7")
    (host,), inventory = common.hosts(PREFIX, 1)
    try:
        bench = Bench(host, inventory, args.clients)
        bench.setup()
        for event in chosen:
            print(f"event {event.number}: {event.name}", file=sys.stderr, flush=True)
            bench.run_event(event)
    finally:
        if not args.keep:
            lab.down(PREFIX)
    print(bench.table())
    return 0 if bench.ok else 1


if __name__ == "__main__":
    sys.exit(main())
