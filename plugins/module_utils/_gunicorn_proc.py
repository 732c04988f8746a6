# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Look at a running Gunicorn through /proc and its control socket (private)."""

from __future__ import annotations

import glob
import json
import os
import socket
import struct
import time
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def boot_time() -> float:
    """Return the boot time as epoch seconds, to 1/100 s (from /proc/uptime)."""
    with open("/proc/uptime", encoding="ascii") as handle:
        uptime = float(handle.read().split()[0])
    return time.time() - uptime


def _stat_fields(pid: int) -> list[str]:
    """Return the fields of /proc/PID/stat after the command name."""
    with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
        data = handle.read()
    # The command name may hold spaces and parentheses: cut at the last ')'.
    return data[data.rindex(")") + 2 :].split()


def process_start(pid: int, boot: float | None = None) -> float:
    """Return the start time of a process as epoch seconds."""
    ticks = int(_stat_fields(pid)[19])  # field 22 of stat(5), after pid and comm
    return (boot if boot is not None else boot_time()) + ticks / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Return the sorted pids whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry))[1]) == pid:
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return sorted(found)


def cmdline(pid: int) -> list[str]:
    """Return the argument vector of a process."""
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        raw = handle.read()
    return [arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg]


def config_path(argv: list[str], cwd: str | None = None) -> str | None:
    """Return the config file named by -c/--config in a Gunicorn command line."""
    value = None
    for index, arg in enumerate(argv):
        if arg in ("-c", "--config") and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
    for prefix in ("file:",):
        if value and value.startswith(prefix):
            value = value[len(prefix) :]
    if value and cwd and not value.startswith(("/", "python:")):
        value = os.path.join(cwd, value)
    return value


def gunicorn_version(argv: list[str]) -> str | None:
    """Return the version of the Gunicorn a master runs, from its venv's dist-info."""
    for arg in argv[:2]:
        if os.path.basename(arg) != "gunicorn" or os.path.isdir(arg):
            continue
        root = os.path.dirname(os.path.dirname(arg))
        pattern = os.path.join(root, "lib", "python*", "site-packages", "gunicorn-*.dist-info")
        for info in sorted(glob.glob(pattern)):
            return os.path.basename(info)[len("gunicorn-") : -len(".dist-info")]
    return None


def control_request(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one command to a Gunicorn control socket and return its ``data``.

    Frames are a 4-byte big-endian length followed by JSON, as in gunicorn/ctl/.
    Raises OSError or ValueError when the socket does not answer as expected.
    """
    payload = json.dumps({"id": 1, "command": command, "args": []}).encode("utf-8")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(struct.pack(">I", len(payload)) + payload)
        header = _recv_exact(sock, 4)
        (length,) = struct.unpack(">I", header)
        if length > 16 * 1024 * 1024:
            raise ValueError(f"answer of {length} bytes is too large")
        reply = json.loads(_recv_exact(sock, length).decode("utf-8"))
    if reply.get("status") != "ok":
        raise ValueError(f"{command!r} failed: {reply.get('error')}")
    return reply.get("data") or {}


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed in the middle of an answer")
        data += chunk
    return data


def describe_workers(pids: list[int], now: float | None = None) -> list[dict[str, Any]]:
    """Return ``{pid, started, age}`` for each pid still alive, oldest first."""
    boot = boot_time()
    now = time.time() if now is None else now
    workers = []
    for pid in pids:
        try:
            started = process_start(pid, boot)
        except (OSError, ValueError, IndexError):
            continue
        workers.append({"pid": pid, "started": round(started, 2), "age": round(now - started, 2)})
    return sorted(workers, key=lambda w: (w["started"], w["pid"]))
