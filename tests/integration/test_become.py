"""The role through `become`, as most fleets are reached: a non-root login that uses sudo.

The role's controller-side steps (packing a release, packing the wheelhouse) must not inherit
the play's `become`: on a controller they would ask for a sudo password, or leave root-owned
files in the user's cache. Here become on the controller would run /bin/false to switch to
`nobody` (from root to root Ansible does not switch at all), so any such step fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hostlab import paths

from .conftest import APPS_SRC, Converger, http

NAME = "bc-app"
LOGIN = "deploy"


@pytest.fixture(scope="module")
def converge_as_login(host, tmp_path_factory) -> Converger:
    """A converger that logs in as a sudoer and breaks sudo on the controller."""
    host.run(
        f"id {LOGIN} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {LOGIN}; "
        f"install -d -m 0700 -o {LOGIN} -g {LOGIN} /home/{LOGIN}/.ssh && "
        f"install -m 0600 -o {LOGIN} -g {LOGIN} /root/.ssh/authorized_keys /home/{LOGIN}/.ssh/ && "
        f"echo '{LOGIN} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{LOGIN} && "
        f"chmod 0440 /etc/sudoers.d/{LOGIN}",
        check=True,
    )
    workdir = tmp_path_factory.mktemp("become")
    login = {
        "ansible_host": host.address,
        "ansible_user": LOGIN,
        "ansible_ssh_private_key_file": str(paths.ssh_key()),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    controller = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become_exe": "/bin/false",
        "ansible_become_user": "nobody",
    }
    inventory = workdir / "inventory.yml"
    inventory.write_text(
        json.dumps({"all": {"hosts": {host.name: login, "localhost": controller}}}, indent=2)
    )
    return Converger(host, inventory, workdir)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A release directory of the Flask example app on the controller."""
    path = tmp_path_factory.mktemp("bc-release")
    (path / "hello_wsgi.py").write_text((APPS_SRC / "hello_wsgi.py").read_text())
    return path


def app(release: Path) -> dict:
    """The test app, deployed from a directory on the controller."""
    return {
        "name": NAME,
        "wsgi_app": "hello_wsgi:app",
        "packages": ["flask==3.1.3"],
        "workers": 1,
        "source": {"type": "dir", "path": str(release)},
    }


def test_a_sudoer_login_deploys_without_sudo_on_the_controller(host, converge_as_login, release):
    run = converge_as_login(
        [app(release)], playbook=Path(__file__).with_name("converge_become.yml")
    )
    assert run.rc == 0, run
    assert http(host, {"name": NAME})[0] == 200
    owner = host.run(f"stat -c %U /srv/gunicorn/{NAME}/current/hello_wsgi.py").stdout.strip()
    assert owner == "root"


def test_removal_through_become_leaves_nothing(host, converge_as_login, release):
    run = converge_as_login(
        [{"name": NAME, "state": "absent"}],
        playbook=Path(__file__).with_name("converge_become.yml"),
    )
    assert run.rc == 0, run
    assert host.run(f"ls /etc/systemd/system/{NAME}.service /srv/gunicorn/{NAME}").stdout == ""
