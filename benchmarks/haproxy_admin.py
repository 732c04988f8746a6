"""Drain and re-enable a server through HAProxy's runtime API (its admin Unix socket).

The rolling benchmark's batch hooks call this on the controller, so that a host takes no new
requests while the deploy touches it, and takes them again only once its health check passes.

Usage: python haproxy_admin.py SOCKET drain|ready BACKEND/SERVER [--timeout 60]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

POLL = 0.2


def command(path: str, line: str) -> str:
    """Send one runtime API command over the Unix socket at `path` and return the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(path)
        conn.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stats(path: str) -> list[dict[str, str]]:
    """The rows of `show stat`, as dicts keyed by HAProxy's column names."""
    lines = command(path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]


def server_row(path: str, backend: str, server: str) -> dict[str, str]:
    """The stats row of one server; KeyError when HAProxy has none."""
    for row in stats(path):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    raise KeyError(f"HAProxy has no server {backend}/{server}")


def wait_for(path: str, backend: str, server: str, done, timeout: float) -> dict[str, str]:
    """Poll the server's stats row until `done(row)` holds; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        row = server_row(path, backend, server)
        if done(row):
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"{backend}/{server} stayed {row.get('status')}, {row.get('scur')}")
        time.sleep(POLL)


def main(argv: list[str] | None = None) -> int:
    """Drain a server (wait until it has no sessions) or make it ready (wait until UP)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("socket")
    parser.add_argument("action", choices=["drain", "ready"])
    parser.add_argument("server", help="BACKEND/SERVER")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    backend, _, server = args.server.partition("/")
    answer = command(args.socket, f"set server {backend}/{server} state {args.action}").strip()
    if answer:
        print(f"Cannot {args.action} {args.server}: {answer}", file=sys.stderr)
        return 1
    if args.action == "drain":
        row = wait_for(args.socket, backend, server, lambda r: r["scur"] == "0", args.timeout)
    else:
        row = wait_for(
            args.socket, backend, server, lambda r: r["status"].startswith("UP"), args.timeout
        )
    print(f"{args.server}: {row['status']}, {row['scur']} sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
