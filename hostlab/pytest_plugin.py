"""pytest plugin giving tests throwaway hostlab hosts; load it with ``-p hostlab.pytest_plugin``.

The session fixture ``hostlab`` returns a :class:`HostLab`. Call ``hostlab.up(n, prefix)``
for hosts (a module-scoped fixture can share them between tests), pass
``hostlab.inventory_path`` to Ansible, and leave the teardown to the fixture: at the end
of the session it takes down every prefix it started. The tests need root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostlab import lab, paths
from hostlab.lab import Host


class HostLab:
    """Starts hosts for tests and remembers what to take down."""

    def __init__(self) -> None:
        self.prefixes: list[str] = []
        self.inventory_path: Path = paths.default_inventory()

    def up(self, n: int = 1, prefix: str = "hlt", suite: str = "bookworm") -> list[Host]:
        """Start hosts `<prefix>1..n`; their inventory becomes `inventory_path`."""
        inventory = paths.cache_root() / f"inventory-{prefix}.yml"
        self.prefixes.append(prefix)
        hosts = lab.up(n, prefix, suite, inventory)
        self.inventory_path = inventory
        return hosts

    def down(self, prefix: str) -> list[str]:
        """Take down the hosts of `prefix` now instead of at the end of the session."""
        removed = lab.down(prefix)
        if prefix in self.prefixes:
            self.prefixes.remove(prefix)
        (paths.cache_root() / f"inventory-{prefix}.yml").unlink(missing_ok=True)
        return removed

    def close(self) -> None:
        """Take down every prefix this session started."""
        for prefix in list(self.prefixes):
            self.down(prefix)


@pytest.fixture(scope="session")
def hostlab() -> Iterator[HostLab]:
    """Give the session a HostLab and take its hosts down afterwards."""
    if os.geteuid() != 0:
        pytest.skip("hostlab hosts need root (mounts, network namespaces, cgroups)")
    lab_session = HostLab()
    try:
        yield lab_session
    finally:
        lab_session.close()
