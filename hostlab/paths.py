"""Where hostlab keeps its images, keys, host state and inventory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Names of everything hostlab creates on the controller, so that `down` can sweep
# by name even when an interrupted `up` left no state behind.
NAME_TAG = "hostlab-"
VETH_PREFIX = "hlab"
ADDRESS_BASE = "10.213"
SUITES = ("bookworm", "trixie")


def cache_root() -> Path:
    """Return the cache root: $HOSTLAB_CACHE, else .cache/hostlab in the repository."""
    env = os.environ.get("HOSTLAB_CACHE")
    return Path(env).resolve() if env else REPO_ROOT / ".cache" / "hostlab"


def image_dir(suite: str) -> Path:
    """Return the directory of the finished image of a Debian suite."""
    return cache_root() / "images" / suite


def hosts_dir() -> Path:
    """Return the directory holding one state directory per host."""
    return cache_root() / "hosts"


def host_dir(name: str) -> Path:
    """Return the state directory of one host."""
    return hosts_dir() / name


def ssh_key() -> Path:
    """Return the private key that logs in as root on every host."""
    return cache_root() / "ssh" / "id_ed25519"


def default_inventory() -> Path:
    """Return the inventory written when the caller names none."""
    return cache_root() / "inventory.yml"
