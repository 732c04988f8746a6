"""Keep one host's systemd-nspawn alive across reboots issued inside the host.

A `systemctl reboot` inside a booted container ends systemd-nspawn with exit code 133,
and nothing would start it again. This detached process relaunches nspawn on the same
root after such a reboot and stops for good on any other exit, or when it gets SIGTERM.
Run as ``python -m hostlab.keeper NAME``; `hostlab.lab.up` starts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hostlab import paths

REBOOT_EXIT_CODE = 133
STOP_TIMEOUT = 20.0
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))


def cgroup_dirs(name: str) -> list[Path]:
    """Return the controller cgroup directories that hold host `name`."""
    return [root / f"{paths.NAME_TAG}{name}" for root in CGROUP_ROOTS if root.is_dir()]


def join_cgroups(name: str) -> None:
    """Move the calling process into the cgroups of host `name`, creating them if needed.

    Without its own cgroup, every host's units would land in one shared cgroup and clash.
    """
    for cgroup in cgroup_dirs(name):
        cgroup.mkdir(exist_ok=True)
        (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")


def nspawn_command(name: str, state: dict) -> list[str]:
    """Return the systemd-nspawn command line that boots host `name`."""
    return [
        "systemd-nspawn",
        "--quiet",
        f"--directory={state['merged']}",
        "--boot",
        f"--machine={name}",
        # The controller has no system bus: do not register with machined, and stay in
        # the cgroup the supervisor chose.
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{state['netns']}",
        "--link-journal=no",
        "--console=read-only",
    ]


def supervise(name: str) -> int:
    """Run nspawn for host `name` until it exits for another reason than a reboot."""
    host = paths.host_dir(name)
    state = json.loads((host / "state.json").read_text())
    command = nspawn_command(name, state)
    stop_requested: list[float] = []
    child: subprocess.Popen[bytes] | None = None

    def request_stop(signum: int, _frame: object) -> None:
        if not stop_requested:
            stop_requested.append(time.monotonic())
        if child is not None and child.poll() is None:
            # nspawn turns SIGTERM into an orderly shutdown of the container.
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    returncode = 0
    while not stop_requested:
        with open(host / "console.log", "ab") as log:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The keeper runs no threads, so preexec_fn is safe here.
                preexec_fn=lambda: join_cgroups(name),
            )
        while True:
            try:
                returncode = child.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if stop_requested and time.monotonic() - stop_requested[0] > STOP_TIMEOUT:
                    child.kill()
        if returncode != REBOOT_EXIT_CODE:
            break
        with open(host / "console.log", "a") as log:
            log.write("hostlab: host rebooted, starting it again\n")
    return returncode


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m hostlab.keeper NAME``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hostlab.keeper NAME", file=sys.stderr)
        return 2
    return supervise(args[0])


if __name__ == "__main__":
    sys.exit(main())
