"""Start, reach, list and remove throwaway hosts; the API behind the hostlab CLI.

Each host is an overlayfs copy of a cached image, booted by systemd-nspawn in its own
network namespace and cgroups, under a detached `hostlab.keeper` process. Host K gets
the /30 block 10.213.K.0: the controller end of its veth pair holds .1, the host .2.
Every object created on the controller is named after the host (`hostlab-<name>` for
network namespaces and cgroups, a `hostlab:<name>` alias on the veth), so `down` can
sweep by name even after an interrupted `up`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from hostlab import paths
from hostlab.build import build_image
from hostlab.keeper import cgroup_dirs

BOOT_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
MAX_BLOCKS = 254
PREFIX_RE = re.compile(r"[a-z](?:[a-z0-9-]*[a-z-])?")
# The controller end of the veth is VETH_PREFIX + block number, within 15 bytes.
MAX_NAME_LEN = 20
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


@dataclass
class Host:
    """One running host, reachable as root over SSH."""

    name: str
    address: str
    suite: str
    block: int

    def ssh_command(self, command: str) -> list[str]:
        """Return the ssh argument list that runs `command` as root on this host."""
        return [
            "ssh",
            "-i",
            str(paths.ssh_key()),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            f"root@{self.address}",
            command,
        ]

    def run(
        self, command: str, check: bool = False, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host over SSH and return its result as text."""
        return subprocess.run(
            self.ssh_command(command), capture_output=True, text=True, check=check, timeout=timeout
        )

    def wait_running(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Wait until the host's systemd reports `running`; raise RuntimeError otherwise."""
        deadline = time.monotonic() + timeout
        state = "unreachable"
        console = paths.host_dir(self.name) / "console.log"
        while time.monotonic() < deadline:
            if not _keeper_alive(self.name):
                # The host directory goes with the host: quote the console, not its path.
                tail = _tail(console) or _tail(console.with_name("keeper.log"))
                raise RuntimeError(f"Host {self.name} stopped while booting:\n{tail}")
            try:
                result = self.run("systemctl is-system-running --wait", timeout=timeout)
            except subprocess.TimeoutExpired:
                break
            state = result.stdout.strip() or "unreachable"
            if state == "running":
                return
            if result.returncode != 255:
                # Booted, but not cleanly: stop waiting and say which units failed.
                failed = self.run("systemctl --failed --no-legend --plain").stdout.strip()
                raise RuntimeError(f"Host {self.name} booted as {state!r}; failed units: {failed}")
            time.sleep(0.3)
        raise RuntimeError(
            f"Host {self.name} did not reach 'running' within {timeout:.0f} s "
            f"(last state {state!r}); see {console}"
        )

    def reboot_and_wait(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Reboot the host from inside and wait until it is `running` again."""
        marker = "/run/hostlab-before-reboot"
        self.run(f"touch {marker}", check=True)
        self.run("systemctl reboot")
        deadline = time.monotonic() + timeout
        # /run is a fresh tmpfs after a reboot, so the marker tells the old boot from the new.
        while time.monotonic() < deadline:
            if not _keeper_alive(self.name):
                raise RuntimeError(f"Host {self.name} stopped instead of rebooting")
            gone = self.run(f"test ! -e {marker}", timeout=10)
            if gone.returncode == 0:
                self.wait_running(max(deadline - time.monotonic(), 1.0))
                return
            time.sleep(0.5)
        raise RuntimeError(f"Host {self.name} did not come back within {timeout:.0f} s")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@contextmanager
def _lock() -> Iterator[None]:
    """Serialise block allocation between concurrent `up` and `down` calls."""
    paths.cache_root().mkdir(parents=True, exist_ok=True)
    with open(paths.cache_root() / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read_state(name: str) -> dict | None:
    try:
        return json.loads((paths.host_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def _veth_links() -> dict[str, str]:
    """Map host name to controller-side veth name, from the aliases hostlab sets."""
    links: dict[str, str] = {}
    for line in _ip("-o", "link", "show", "type", "veth").stdout.splitlines():
        match = re.match(r"\d+: ([^:@]+)[@:].* alias hostlab:(\S+)", line)
        if match:
            links[match.group(2)] = match.group(1)
    return links


def _used_blocks() -> set[int]:
    used = set()
    if paths.hosts_dir().is_dir():
        for state_dir in paths.hosts_dir().iterdir():
            state = _read_state(state_dir.name)
            if state:
                used.add(int(state["block"]))
    for line in _ip("-o", "link", "show").stdout.splitlines():
        match = re.match(rf"\d+: {paths.VETH_PREFIX}(\d+)[@:]", line)
        if match:
            used.add(int(match.group(1)))
    return used


def check_names(prefix: str, count: int) -> list[str]:
    """Return the host names `<prefix>1..<count>`, or raise ValueError if unusable."""
    if not PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"Cannot use prefix {prefix!r}: use lower-case letters, digits and '-', "
            "starting with a letter and not ending with a digit"
        )
    names = [f"{prefix}{i}" for i in range(1, count + 1)]
    if count < 1 or len(names[-1]) > MAX_NAME_LEN:
        raise ValueError(f"Cannot make {count} hosts named {prefix}N")
    return names


def _matches(name: str, prefix: str | None) -> bool:
    return prefix is None or re.fullmatch(re.escape(prefix) + r"[0-9]+", name) is not None


def _create(name: str, suite: str, image: Path) -> Host:
    """Create the overlay, network and state of one host; the caller holds the lock."""
    free = sorted(set(range(1, MAX_BLOCKS + 1)) - _used_blocks())
    if not free:
        raise RuntimeError("Cannot create host: all 254 address blocks are in use")
    block = free[0]
    host = Host(name, f"{paths.ADDRESS_BASE}.{block}.2", suite, block)
    state_dir = paths.host_dir(name)
    for sub in ("upper", "work", "merged"):
        (state_dir / sub).mkdir(parents=True)
    netns = f"{paths.NAME_TAG}{name}"
    state = {
        "name": name,
        "suite": suite,
        "block": block,
        "address": host.address,
        "netns": netns,
        "merged": str(state_dir / "merged"),
    }
    (state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={image},upperdir={state_dir / 'upper'},workdir={state_dir / 'work'}",
            str(state_dir / "merged"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    etc = state_dir / "merged" / "etc"
    (etc / "hostname").write_text(f"{name}\n")
    (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
    (etc / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )

    veth = f"{paths.VETH_PREFIX}{block}"
    net = f"{paths.ADDRESS_BASE}.{block}"
    _ip("netns", "add", netns)
    _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}h", "netns", netns)
    _ip("link", "set", veth, "alias", f"hostlab:{name}")
    _ip("addr", "add", f"{net}.1/30", "dev", veth)
    _ip("link", "set", veth, "up")
    _ip("-n", netns, "link", "set", f"{veth}h", "name", "eth0")
    _ip("-n", netns, "addr", "add", f"{net}.2/30", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    return host


def _start_keeper(name: str) -> int:
    with open(paths.host_dir(name) / "keeper.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hostlab.keeper", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(paths.REPO_ROOT),
        )
    state_file = paths.host_dir(name) / "state.json"
    state = json.loads(state_file.read_text())
    state["keeper_pid"] = process.pid
    state_file.write_text(json.dumps(state, indent=2) + "\n")
    return process.pid


def up(
    count: int,
    prefix: str = "hl",
    suite: str = "bookworm",
    inventory: Path | None = None,
    timeout: float = BOOT_TIMEOUT,
) -> list[Host]:
    """Start hosts `<prefix>1..<count>`, wait until each is `running`, write the inventory.

    The hosts boot in parallel. On failure the hosts of this call are taken down again.
    """
    names = check_names(prefix, count)
    image = build_image(suite)
    hosts: list[Host] = []
    started: list[str] = []
    try:
        for name in names:
            with _lock():
                if paths.host_dir(name).exists() or name in _veth_links():
                    raise FileExistsError(
                        f"Cannot create host {name}: it exists; run `hostlab down` first"
                    )
                started.append(name)
                hosts.append(_create(name, suite, image))
            _start_keeper(name)
        for host in hosts:
            host.wait_running(timeout)
    except BaseException:
        for name in started:
            _remove(name)
        raise
    with _lock():
        write_inventory(hosts, inventory)
    return hosts


def write_inventory(hosts: list[Host], path: Path | None = None) -> Path:
    """Write a YAML inventory of `hosts` in group `hostlab`, and the default inventory.

    The default inventory always lists every host hostlab knows, so runs with different
    prefixes do not erase each other's entries. JSON strings are valid YAML scalars.
    """
    targets = [(paths.default_inventory(), list_hosts())]
    if path is not None:
        targets.append((Path(path), hosts))
    for target, members in targets:
        lines = [
            "# Written by hostlab; rewritten by every `up` and `down`.",
            "hostlab:",
            "  hosts:",
        ]
        if not members:
            lines[-1] = "  hosts: {}"
        for host in members:
            lines += [
                f"    {host.name}:",
                f"      ansible_host: {json.dumps(host.address)}",
                "      ansible_user: root",
                f"      ansible_ssh_private_key_file: {json.dumps(str(paths.ssh_key()))}",
                f"      ansible_ssh_common_args: {json.dumps(SSH_COMMON_ARGS)}",
                "      ansible_python_interpreter: /usr/bin/python3",
            ]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    return Path(path) if path is not None else paths.default_inventory()


def list_hosts() -> list[Host]:
    """Return the hosts that have state, sorted by name."""
    hosts = []
    if paths.hosts_dir().is_dir():
        for state_dir in sorted(paths.hosts_dir().iterdir()):
            state = _read_state(state_dir.name)
            if state:
                hosts.append(Host(state["name"], state["address"], state["suite"], state["block"]))
    return hosts


def host_state(host: Host) -> str:
    """Return what the host's systemd says, `stopped` without a keeper, else `unreachable`."""
    if not _keeper_pids(host.name):
        return "stopped"
    try:
        result = host.run("systemctl is-system-running", timeout=5)
    except subprocess.TimeoutExpired:
        return "unreachable"
    return result.stdout.strip() or "unreachable"


def _alive(pid: int) -> bool:
    # Reap the keeper if this process started it, so it does not linger as a zombie.
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _keeper_pids(name: str) -> list[int]:
    """Find the keeper of host `name` by its command line, not only by recorded pid."""
    wanted = ["-m", "hostlab.keeper", name]
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if argv[-3:] == wanted and _alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def _cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for cgroup in cgroup_dirs(name):
        if cgroup.is_dir():
            for procs in cgroup.rglob("cgroup.procs"):
                try:
                    pids.update(int(p) for p in procs.read_text().split())
                except (OSError, ValueError):
                    continue
    return pids


def _names_on_controller() -> set[str]:
    """Names of every host that left any trace: state, netns, cgroup, veth, mount, keeper."""
    names = {d.name for d in paths.hosts_dir().iterdir()} if paths.hosts_dir().is_dir() else set()
    tag = paths.NAME_TAG
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        if line.startswith(tag):
            names.add(line.split()[0][len(tag) :])
    for root in (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")):
        if root.is_dir():
            names.update(d.name[len(tag) :] for d in root.glob(f"{tag}*") if d.is_dir())
    names.update(_veth_links())
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = proc.read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if argv[-3:-1] == ["-m", "hostlab.keeper"]:
            names.add(argv[-1])
    return names


def _keeper_alive(name: str) -> bool:
    """Whether the keeper of host `name` runs, by the pid it recorded, else by command line.

    A keeper just started may not show its command line yet, so the scan alone can miss it.
    """
    recorded = (_read_state(name) or {}).get("keeper_pid")
    return (bool(recorded) and _alive(int(recorded))) or bool(_keeper_pids(name))


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines of a text file, or "" when it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _remove(name: str, timeout: float = STOP_TIMEOUT) -> None:
    """Power host `name` off and remove every trace of it from the controller."""
    for pid in _keeper_pids(name):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _keeper_pids(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in _keeper_pids(name):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        leftovers = _cgroup_pids(name)
        if not leftovers:
            break
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        time.sleep(0.1)

    merged = paths.host_dir(name) / "merged"
    umount = ["umount", str(merged)]
    if os.path.ismount(merged) and subprocess.run(umount, check=False).returncode != 0:
        subprocess.run(["umount", "--lazy", str(merged)], check=True)
    veth = _veth_links().get(name)
    if veth:
        _ip("link", "del", veth, check=False)
    _ip("netns", "del", f"{paths.NAME_TAG}{name}", check=False)
    for cgroup in cgroup_dirs(name):
        if cgroup.is_dir():
            # Cgroup directories are removed with rmdir, deepest first.
            for sub in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            cgroup.rmdir()
    shutil.rmtree(paths.host_dir(name), ignore_errors=True)


def down(prefix: str | None = None) -> list[str]:
    """Remove the hosts named `<prefix>N`, or every hostlab host when `prefix` is None.

    Hosts are found by the names of what hostlab creates, so the leftovers of an
    interrupted `up` are swept too. Return the names removed.
    """
    names = sorted(n for n in _names_on_controller() if _matches(n, prefix))
    # Ask every host to power off first, so that they shut down in parallel.
    for name in names:
        for pid in _keeper_pids(name):
            os.kill(pid, signal.SIGTERM)
    for name in names:
        _remove(name)
    with _lock():
        write_inventory([])
    return names


def format_hosts(hosts: list[Host]) -> str:
    """Return one line per host: name, address, state, suite."""
    return "".join(f"{h.name}\t{h.address}\t{host_state(h)}\t{h.suite}\n" for h in hosts)
