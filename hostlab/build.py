"""Build the cached Debian root file system that every host boots from."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from hostlab import paths

PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-venv",
    "python3-apt",
    "sudo",
    "logrotate",
    "openssh-server",
    "curl",
    "iproute2",
    "procps",
    "nginx-light",
    "ca-certificates",
    "libpam-systemd",
    "less",
)

# Units that cannot work inside an nspawn container on this controller. Left alone,
# they fail at boot and `systemctl is-system-running` reports `degraded`.
MASKED_UNITS = (
    "systemd-remount-fs.service",
    "systemd-journald-audit.socket",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "systemd-firstboot.service",
    "systemd-networkd-wait-online.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "getty@tty1.service",
)

SSHD_CONFIG = """\
# Written by hostlab: root logs in with the hostlab key only.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


def ensure_ssh_key() -> Path:
    """Create the hostlab SSH key pair if it is missing and return the private key path."""
    key = paths.ssh_key()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostlab", "-f", str(key)],
            check=True,
        )
    return key


def _configure(root: Path, pubkey: str) -> None:
    """Turn a fresh debootstrap tree into a host that boots to `running` with SSH."""
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey)
    (ssh_dir / "authorized_keys").chmod(0o600)
    sshd_d = root / "etc" / "ssh" / "sshd_config.d"
    sshd_d.mkdir(exist_ok=True)
    (sshd_d / "hostlab.conf").write_text(SSHD_CONFIG)

    systemd_etc = root / "etc" / "systemd" / "system"
    wants = systemd_etc / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    ssh_link = wants / "ssh.service"
    if not ssh_link.is_symlink():
        ssh_link.symlink_to("/lib/systemd/system/ssh.service")
    # Tests start nginx themselves when they need it.
    (wants / "nginx.service").unlink(missing_ok=True)
    for unit in MASKED_UNITS:
        link = systemd_etc / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")

    # The hosts have no route to any package registry.
    (root / "etc" / "apt" / "sources.list").write_text("")
    # Each host gets its own machine id and hostname when it is created.
    (root / "etc" / "machine-id").write_text("")
    (root / "etc" / "hostname").unlink(missing_ok=True)
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True)


def build_image(suite: str = "bookworm", force: bool = False) -> Path:
    """Build the image of `suite` unless it is cached, and return its directory.

    The tree is built in a temporary directory and renamed into place only when
    complete, so an interrupted build is never mistaken for a cached image.
    """
    if suite not in paths.SUITES:
        raise ValueError(f"Cannot build suite {suite!r}: choose one of {', '.join(paths.SUITES)}")
    target = paths.image_dir(suite)
    if target.is_dir() and not force:
        return target
    pubkey = ensure_ssh_key().with_suffix(".pub").read_text()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{suite}.building"
    if tmp.exists():
        shutil.rmtree(tmp)
    started = time.monotonic()
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            suite,
            str(tmp),
        ],
        check=True,
    )
    _configure(tmp, pubkey)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    print(f"hostlab: built {suite} image in {time.monotonic() - started:.0f} s")
    return target
