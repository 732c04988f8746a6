#!/usr/bin/python
# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report the live state of one Gunicorn app, optionally waiting for new workers."""

from __future__ import annotations

# Ansible wants the documentation strings before any import.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: gunicorn_info
short_description: Read the live state of one Gunicorn app
version_added: 0.1.0
description:
  - Reports the systemd state of C(NAME.service) and C(NAME.socket), the master process,
    its workers with their start times, the listeners, the config file and the Gunicorn
    version of one app.
  - Uses Gunicorn's control socket (Gunicorn 25.1 and later) when O(control_socket) is given
    and answers; otherwise the workers are the children of the service's main process, read
    from C(/proc).
  - Worker start times always come from C(/proc), since the control socket reports spawn
    order, not time.
  - With O(wait_for), polls until a reload or restart has replaced the workers, which is how
    a deploy knows that new code serves requests.
author:
  - pyserve maintainers
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
options:
  name:
    description: The unit base name; the module looks at C(NAME.service) and C(NAME.socket).
    type: str
    required: true
  control_socket:
    description:
      - Path of the app's Gunicorn control socket (the C(control_socket) setting).
      - When it is missing or does not answer, the module falls back to C(/proc).
    type: path
  wait_for:
    description:
      - Wait until every condition given here holds, checking twice a second.
      - Fails after O(timeout) seconds with the state last seen.
    type: dict
    suboptions:
      workers_newer_than:
        description:
          - Epoch time (as from C(date +%s.%N)) taken just before the reload. Holds when
            O(expect_workers) workers (at least one when not set) all started after it.
        type: float
      master_pid_changed_from:
        description: Holds when a master runs whose pid differs from this one.
        type: int
  timeout:
    description: Seconds to wait for O(wait_for).
    type: float
    default: 30
  expect_workers:
    description: Number of workers that O(wait_for) waits for.
    type: int
notes:
  - Start times are read from C(/proc) in clock ticks, so they are precise to about 10 ms.
  - Without a control socket, every child of the master counts as a worker, including the
    dirty arbiter of Gunicorn 25 and later.
  - When systemd is not PID 1, the unit states are C(unknown), and without a control socket
    no master can be found.
"""

EXAMPLES = r"""
- name: Read the state of shop
  pyserve.gunicorn.gunicorn_info:
    name: shop
    control_socket: /run/shop/gunicorn.ctl
  register: shop_state

- name: Note the time before reloading shop
  ansible.builtin.command: date +%s.%N
  register: shop_reload_time
  changed_when: false

- name: Reload shop
  ansible.builtin.systemd_service:
    name: shop.service
    state: reloaded

- name: Wait for fresh workers of shop
  pyserve.gunicorn.gunicorn_info:
    name: shop
    control_socket: /run/shop/gunicorn.ctl
    expect_workers: "{{ shop_state.workers | length }}"
    wait_for:
      workers_newer_than: "{{ shop_reload_time.stdout | float }}"
    timeout: 60
"""

RETURN = r"""
service_state:
  description: ActiveState of C(NAME.service), or C(unknown) without systemd.
  returned: always
  type: str
  sample: active
socket_state:
  description: ActiveState of C(NAME.socket); C(inactive) when there is no such unit.
  returned: always
  type: str
  sample: active
waiting_on_socket:
  description: Whether the socket listens while the service has not started yet.
  returned: always
  type: bool
  sample: false
master_pid:
  description: Pid of the Gunicorn master; 0 when none runs.
  returned: always
  type: int
  sample: 4242
workers:
  description: The workers, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
    started:
      description: Start time, epoch seconds.
      type: float
    age:
      description: Seconds since the start.
      type: float
  sample: [{"pid": 4250, "started": 1767000000.12, "age": 31.5}]
worker_generation_started:
  description: Start time of the oldest worker, epoch seconds; null without workers.
  returned: always
  type: float
  sample: 1767000000.12
gunicorn_version:
  description: Version of the Gunicorn the master runs, read from its venv; null if unknown.
  returned: always
  type: str
  sample: 23.0.0
listeners:
  description: Addresses the master listens on, as Gunicorn or systemd prints them.
  returned: always
  type: list
  elements: str
  sample: ["unix:/run/shop/gunicorn.sock"]
config_path:
  description: The config file named on the master's command line; null if none.
  returned: always
  type: str
  sample: /etc/gunicorn/shop/gunicorn.conf.py
source:
  description: Where the worker list came from, C(control_socket) or C(proc).
  returned: always
  type: str
  sample: control_socket
"""

import os
import shutil
import subprocess
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pyserve.gunicorn.plugins.module_utils._gunicorn_check import (
    systemd_is_init,
)
from ansible_collections.pyserve.gunicorn.plugins.module_utils._gunicorn_proc import (
    children,
    cmdline,
    config_path,
    control_request,
    describe_workers,
    gunicorn_version,
)

PROPERTIES = "Id,LoadState,ActiveState,SubState,MainPID,Listen"


def unit_states(name: str) -> dict[str, dict[str, str]]:
    """Return systemd properties of NAME.service and NAME.socket, keyed by unit suffix."""
    units = {"service": {"ActiveState": "unknown"}, "socket": {"ActiveState": "unknown"}}
    systemctl = shutil.which("systemctl")
    if not systemctl or not systemd_is_init():
        return units
    argv = [systemctl, "show", f"{name}.service", f"{name}.socket", f"--property={PROPERTIES}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        return units
    for block, kind in zip(proc.stdout.split("\n\n"), ("service", "socket"), strict=False):
        props: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition("=")
            props.setdefault(key, value)
            if key == "Listen":
                props.setdefault("Listens", "")
                props["Listens"] += value.rsplit(" (", 1)[0] + "\n"
        units[kind] = props
    return units


def gather(name: str, control_socket: str | None) -> dict[str, Any]:
    """Collect the state of the app once."""
    units = unit_states(name)
    service, sock = units["service"], units["socket"]
    master = int(service.get("MainPID") or 0)
    pids: list[int] | None = None
    listeners: list[str] = []
    source = "proc"
    if control_socket and os.path.exists(control_socket):
        try:
            stats = control_request(control_socket, "show stats")
            pids = [
                int(w["pid"]) for w in control_request(control_socket, "show workers")["workers"]
            ]
            listeners = [
                lnr["address"]
                for lnr in control_request(control_socket, "show listeners")["listeners"]
            ]
            master = master or int(stats.get("pid") or 0)
            source = "control_socket"
        except (OSError, ValueError, KeyError, TypeError):
            pids = None
    if pids is None:
        pids = children(master) if master else []
        listeners = [x for x in sock.get("Listens", "").splitlines() if x]
    argv: list[str] = []
    cwd = None
    if master:
        try:
            argv = cmdline(master)
            cwd = os.readlink(f"/proc/{master}/cwd")
        except OSError:
            pass
    workers = describe_workers(pids)
    service_state = service.get("ActiveState", "unknown")
    socket_state = sock.get("ActiveState", "unknown")
    if sock.get("LoadState") == "not-found":
        socket_state = "inactive"
    return dict(
        service_state=service_state,
        socket_state=socket_state,
        waiting_on_socket=socket_state == "active" and service_state not in ("active", "reloading"),
        master_pid=master,
        workers=workers,
        worker_generation_started=workers[0]["started"] if workers else None,
        gunicorn_version=gunicorn_version(argv),
        listeners=listeners,
        config_path=config_path(argv, cwd),
        source=source,
    )


def unmet(state: dict[str, Any], wait_for: dict[str, Any], expect: int | None) -> list[str]:
    """Return the conditions of wait_for that the state does not meet yet."""
    missing = []
    newer = wait_for.get("workers_newer_than")
    if newer is not None:
        fresh = [w for w in state["workers"] if w["started"] > newer]
        want = expect if expect is not None else max(1, len(state["workers"]))
        if len(fresh) < want or len(fresh) != len(state["workers"]):
            missing.append(
                f"{want} workers started after {newer}, saw {len(fresh)} of {len(state['workers'])}"
            )
    old_master = wait_for.get("master_pid_changed_from")
    if old_master is not None and state["master_pid"] in (0, old_master):
        missing.append(f"a master other than pid {old_master}, saw {state['master_pid']}")
    return missing


def main() -> None:
    """Run the module."""
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            control_socket=dict(type="path"),
            wait_for=dict(
                type="dict",
                options=dict(
                    workers_newer_than=dict(type="float"),
                    master_pid_changed_from=dict(type="int"),
                ),
            ),
            timeout=dict(type="float", default=30),
            expect_workers=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    state = gather(params["name"], params["control_socket"])
    if params["wait_for"]:
        deadline = time.monotonic() + params["timeout"]
        while True:
            missing = unmet(state, params["wait_for"], params["expect_workers"])
            if not missing:
                break
            if time.monotonic() >= deadline:
                module.fail_json(
                    msg=f"Gave up on {params['name']} after {params['timeout']}s: waited for "
                    + "; ".join(missing),
                    changed=False,
                    **state,
                )
            time.sleep(0.5)
            state = gather(params["name"], params["control_socket"])
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
