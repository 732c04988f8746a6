"""What a user of hostlab relies on, checked on real hosts booted with systemd-nspawn.

Run as root from the repository root:
    .cache/venv/bin/python -m pytest -p hostlab.pytest_plugin tests/hostlab
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hostlab import lab, paths
from hostlab.lab import Host
from hostlab.pytest_plugin import HostLab

ANSIBLE = Path(sys.executable).parent / "ansible"


@pytest.fixture(scope="module")
def pair(hostlab: HostLab) -> list[Host]:
    """Two hosts shared by the tests of this module."""
    return hostlab.up(2, prefix="hlt")


def leftovers(name: str) -> list[str]:
    """Describe every trace of host `name` still on the controller."""
    found = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = proc.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        keeper = "hostlab.keeper" in argv and argv[-2:] == [name, ""]
        if keeper or any(f"hosts/{name}/" in arg for arg in argv):
            found.append(f"process {proc.parent.name}: {' '.join(argv)}")
    if f"/hosts/{name}/" in Path("/proc/self/mountinfo").read_text():
        found.append("overlay mount")
    links = subprocess.run(["ip", "-o", "link"], check=False, capture_output=True, text=True).stdout
    if re.search(rf"alias hostlab:{re.escape(name)}(\s|$)", links, re.MULTILINE):
        found.append("veth link")
    netns = subprocess.run(
        ["ip", "netns", "list"], check=False, capture_output=True, text=True
    ).stdout
    if f"hostlab-{name}" in netns.split():
        found.append("network namespace")
    found += [str(d) for d in Path("/sys/fs/cgroup").glob(f"*/hostlab-{name}")]
    if paths.host_dir(name).exists():
        found.append("state directory")
    return found


def test_ansible_reaches_both_hosts_over_ssh(pair: list[Host], hostlab: HostLab) -> None:
    result = subprocess.run(
        [str(ANSIBLE), "-i", str(hostlab.inventory_path), "all", "-m", "ping"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for host in pair:
        assert f"{host.name} | SUCCESS" in result.stdout


def test_each_host_has_its_own_name_and_address_and_is_running(pair: list[Host]) -> None:
    assert len({h.address for h in pair}) == 2
    for host in pair:
        result = host.run("hostname; ip -4 -o addr show dev eth0; systemctl is-system-running")
        name, addr, state = result.stdout.splitlines()
        assert name == host.name
        assert f"inet {host.address}/30" in addr
        assert state == "running"


def test_hosts_have_no_route_beyond_their_own_link(pair: list[Host]) -> None:
    routes = pair[0].run("ip -4 route show").stdout
    assert "default" not in routes


def test_same_transient_unit_runs_independently_on_each_host(pair: list[Host]) -> None:
    first, second = pair
    for host in pair:
        host.run("systemctl stop probe.service; systemctl reset-failed probe.service")
        host.run("systemd-run --unit=probe sleep 600", check=True)
    first.run("systemctl stop probe.service", check=True)
    assert first.run("systemctl is-active probe.service").stdout.strip() == "inactive"
    assert second.run("systemctl is-active probe.service").stdout.strip() == "active"
    second.run("systemctl stop probe.service", check=True)


def test_unit_started_on_one_host_is_invisible_on_the_other(pair: list[Host]) -> None:
    first, second = pair
    first.run("systemd-run --unit=only-here sleep 600", check=True)
    try:
        seen = second.run("systemctl list-units --all --no-legend only-here.service").stdout
        assert seen.strip() == ""
        assert "sleep 600" not in second.run("ps -eo args").stdout
    finally:
        first.run("systemctl stop only-here.service")


def test_reboot_inside_host_brings_it_back_with_its_files(pair: list[Host]) -> None:
    host = pair[1]
    host.run("echo survives > /root/before-reboot", check=True)
    host.reboot_and_wait()
    result = host.run("cat /root/before-reboot; systemctl is-system-running; hostname -I")
    assert result.stdout.split() == ["survives", "running", host.address]


def test_list_shows_running_hosts(pair: list[Host]) -> None:
    lines = lab.format_hosts(lab.list_hosts()).splitlines()
    for host in pair:
        assert f"{host.name}\t{host.address}\trunning\tbookworm" in lines


def test_down_leaves_nothing_behind(hostlab: HostLab) -> None:
    (host,) = hostlab.up(1, prefix="hld")
    assert host.run("true").returncode == 0
    # The check must see a running host, or its empty answer later would prove nothing.
    assert {"overlay mount", "veth link", "network namespace"} <= set(leftovers(host.name))
    hostlab.down("hld")
    assert leftovers(host.name) == []
    assert host.name not in [h.name for h in lab.list_hosts()]


def test_nginx_is_installed_but_left_off(pair: list[Host]) -> None:
    result = pair[0].run("systemctl is-enabled nginx.service; systemctl is-active nginx.service")
    assert result.stdout.split() == ["disabled", "inactive"]


@pytest.mark.skipif(
    not paths.image_dir("trixie").is_dir(),
    reason="no trixie image cached; build it with `python -m hostlab image --suite trixie`",
)
def test_trixie_host_boots_to_running(hostlab: HostLab) -> None:
    (host,) = hostlab.up(1, prefix="hlx", suite="trixie")
    try:
        result = host.run("systemctl is-system-running; . /etc/os-release; echo $VERSION_CODENAME")
        assert result.stdout.split() == ["running", "trixie"]
    finally:
        hostlab.down("hlx")
