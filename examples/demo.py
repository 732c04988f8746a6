"""The main job: boot one test host, deploy the example app with the role, show that it answers.

Run it as root with `make demo`. The host stays up so that you can look around; remove it with
`make clean-hosts`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hostlab import lab

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    """Boot a host, converge it with examples/site.yml, and print the app's answer."""
    lab.down("demo")
    inventory = REPO / ".cache" / "demo-inventory.yml"
    (host,) = lab.up(1, "demo", "bookworm", inventory)
    print(f"demo: host {host.name} is running at {host.address}")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
    }
    playbook = [
        str(REPO / ".cache" / "venv" / "bin" / "ansible-playbook"),
        "-i",
        str(inventory),
        str(REPO / "examples" / "site.yml"),
    ]
    if subprocess.run(playbook, env=env, cwd=REPO, check=False).returncode != 0:
        return 1
    answer = host.run(
        "curl --silent --show-error --unix-socket /run/gunicorn/hello.sock http://localhost/"
    )
    print(
        f"\ndemo: GET / through /run/gunicorn/hello.sock on {host.name} answered:\n{answer.stdout}"
    )
    print("demo: remove the host with `make clean-hosts`")
    return answer.returncode


if __name__ == "__main__":
    sys.exit(main())
