#!/usr/bin/python
# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write one app's gunicorn.conf.py, validated by the Gunicorn in the app's venv."""

from __future__ import annotations

# Ansible wants the documentation strings before any import.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: gunicorn_config
short_description: Write a validated gunicorn.conf.py for one app
version_added: 0.1.0
description:
  - Writes the Gunicorn configuration file of one app from a dictionary of settings
    named as Gunicorn names them, plus optional server hooks.
  - Every value is written as a Python literal, one C(name = value) line per setting,
    sorted by name. The same input always gives a byte-identical file.
  - Names and values are validated by the Gunicorn installed in O(venv), through its own
    validators, so the check follows the Gunicorn version the app really runs.
  - When O(check) is given, the complete file is tried with C(gunicorn --check-config) as
    the app's user, in the app's directory and with its environment, before it replaces
    the live file. The live file is left alone when the check fails.
  - The module tells which changed settings need a restart rather than a reload (HUP).
    From C(gunicorn/arbiter.py), a HUP re-reads the file, reconfigures logging, rewrites
    the pidfile, re-applies C(raw_env) and forks new workers, so most settings only need a
    reload. These need a restart, because Gunicorn applies them once at start
    (see RV(restart_settings)).
  - C(backlog), C(reuse_port) are socket options set when the listener is created; a HUP
    keeps the listeners.
  - C(bind) needs it because on a new address a HUP rebinds as the unprivileged master,
    which cannot bind ports below 1024 and drops sockets handed over by systemd socket
    activation.
  - C(chdir), C(pythonpath) set the master's directory and C(sys.path) once, before the
    arbiter starts.
  - C(control_socket), C(control_socket_mode), C(control_socket_disable) belong to the
    control server, which is started once and which C(Arbiter.reload) never restarts.
  - C(daemon) only acts before the master loop starts.
  - C(preload_app) makes the master import the app once and cache it; a HUP does not import
    it again.
  - C(user), C(group), C(initgroups) can only be handed to workers by a root master; under
    this collection's units the master already runs as the app user.
  - C(worker_class) is swapped for new workers by a HUP, but the class's own
    C(check_config) only runs when the master starts.
  - Settings starting with C(dirty_) belong to the dirty arbiter, which is forked at start
    with its own copy of the configuration.
  - Hooks C(on_starting) and C(when_ready) are called once when the master starts, so a new
    body only runs after a restart. All other hooks are read again on HUP.
author:
  - pyserve maintainers
attributes:
  check_mode:
    support: full
    details:
      - Reports the change and the diff and writes nothing. The C(--check-config) run is
        skipped, because it imports the app. When O(venv) does not exist yet, validation is
        skipped too, with a warning.
  diff_mode:
    support: full
options:
  path:
    description:
      - The configuration file to write, for example C(/etc/gunicorn/NAME/gunicorn.conf.py).
      - Its directory must exist.
    type: path
    required: true
  venv:
    description:
      - The app's virtual environment. Gunicorn is imported from C(VENV/bin/python) to
        validate the settings and C(VENV/bin/gunicorn) runs the check.
    type: path
    required: true
  settings:
    description:
      - Gunicorn settings by Gunicorn's own names, such as C(workers), C(bind),
        C(worker_class) or C(control_socket).
      - Values must be plain data (strings, numbers, booleans, lists, dictionaries, null).
      - Server hooks are not accepted here; give them in O(hooks).
    type: dict
    default: {}
  hooks:
    description:
      - Server hooks by name, such as C(post_fork), C(when_ready) or C(on_starting).
      - Each value is the Python source of a function with that name. It is kept verbatim
        (dedented) in a marked section after the settings.
      - A name that is not a server hook of the installed Gunicorn is an error, and so is a
        function with the wrong number of arguments.
    type: dict
    default: {}
  owner:
    description: User that owns the file.
    type: str
  group:
    description: Group of the file. The app's group must be able to read it.
    type: str
  mode:
    description: Permissions of the file, as a quoted octal string.
    type: raw
    default: "0640"
  check:
    description:
      - Try the whole new file with C(gunicorn --check-config) before it goes live.
      - Runs only when the new content differs from the live file, or with O(force_check).
      - When systemd is PID 1 the check runs through C(systemd-run) as a transient service
        with O(check.properties), so it sees the same sandbox as the service. Otherwise it
        runs through C(setpriv) (or C(runuser)), and O(check.properties) are ignored.
      - The candidate file is written next to O(path), readable by O(check.group), and
        removed afterwards.
    type: dict
    suboptions:
      wsgi_app:
        description: The app to load, as C(module:callable).
        type: str
        required: true
      chdir:
        description: The app's directory, used as working directory.
        type: path
        required: true
      user:
        description: User the check runs as.
        type: str
      group:
        description: Group the check runs as.
        type: str
      environment_file:
        description: The app's environment file, in systemd C(EnvironmentFile=) format.
        type: path
      environment:
        description:
          - The environment the app will have, when it differs from O(check.environment_file)
            or that file is not written yet. The check runs with a temporary environment
            file of these values, readable by O(check.group) and removed afterwards.
          - When it differs from the assignments in O(check.environment_file), the check runs
            even if the config file does not change, since the next start would use it.
          - Its values are never logged or returned.
        type: dict
      properties:
        description:
          - Extra systemd unit properties for the transient check service, for example
            C(ProtectSystem=strict). Booleans become C(yes) or C(no), lists are joined by
            spaces.
        type: dict
  force_check:
    description: Run the check even when the file would not change.
    type: bool
    default: false
notes:
  - The previous settings are read from the live file with Python's C(ast) module; the file
    is never executed by this module.
  - When there is no live file yet, every restart-class setting that is set is listed in
    RV(restart_settings).
  - The app's environment file and venv are not part of this file; changes to them need a
    restart that the calling role decides.
seealso:
  - name: Gunicorn settings
    description: The settings reference of Gunicorn.
    link: https://docs.gunicorn.org/en/stable/settings.html
"""

EXAMPLES = r"""
- name: Write the Gunicorn configuration of shop
  pyserve.gunicorn.gunicorn_config:
    path: /etc/gunicorn/shop/gunicorn.conf.py
    venv: /srv/shop/venv
    owner: root
    group: shop
    settings:
      wsgi_app: shop.wsgi:application
      bind: unix:/run/shop/gunicorn.sock
      workers: 5
      worker_class: gthread
      threads: 4
      control_socket: /run/shop/gunicorn.ctl
    hooks:
      post_fork: |
        def post_fork(server, worker):
            server.log.info("worker %s ready", worker.pid)
    check:
      wsgi_app: shop.wsgi:application
      chdir: /srv/shop/app
      user: shop
      group: shop
      environment_file: /etc/gunicorn/shop/environment
      properties:
        ProtectSystem: strict
  register: shop_conf

- name: Restart shop when a setting needs it
  ansible.builtin.systemd_service:
    name: shop.service
    state: restarted
  when: shop_conf.restart_required
"""

RETURN = r"""
settings:
  description: The settings as written to the file.
  returned: always
  type: dict
  sample: {"bind": "unix:/run/shop/gunicorn.sock", "workers": 5}
gunicorn_version:
  description: Version of the Gunicorn in the venv; null when the venv does not exist yet.
  returned: always
  type: str
  sample: 23.0.0
restart_required:
  description: Whether a changed setting or hook needs a restart instead of a HUP.
  returned: always
  type: bool
  sample: false
restart_settings:
  description:
    - Sorted names of the changed settings and hooks that a HUP cannot apply.
    - See the description for the list and the reason for each.
  returned: always
  type: list
  elements: str
  sample: ["bind", "preload_app"]
check_output:
  description: Last lines of the output of C(gunicorn --check-config), when it ran.
  returned: when the check ran
  type: str
"""

import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.pyserve.gunicorn.plugins.module_utils._gunicorn_check import (
    environment_lines,
    format_environment,
    run_check,
)
from ansible_collections.pyserve.gunicorn.plugins.module_utils._gunicorn_conf import (
    ConfigError,
    normalize_hook,
    parse,
    render,
    restart_settings,
    validate,
)

TAIL = 3000


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_temp(
    module: AnsibleModule, directory: str, content: str, prefix: str, suffix: str = ".py"
) -> str:
    """Write content to a new file in directory; return its path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    return tmp


def _environment_changes(check: dict[str, Any]) -> bool:
    """Whether check.environment differs from the assignments of check.environment_file."""
    if check.get("environment") is None:
        return False
    try:
        with open(check.get("environment_file") or "", encoding="utf-8") as handle:
            live = environment_lines(handle.read())
    except OSError:
        return True
    return live != environment_lines(format_environment(check["environment"]))


def _check(module: AnsibleModule, path: str, content: str, check: dict[str, Any]) -> str:
    """Try content with gunicorn --check-config; fail the module when it does not pass."""
    directory = os.path.dirname(path)
    gunicorn = os.path.join(module.params["venv"], "bin", "gunicorn")
    group = check.get("group") or module.params["group"]
    made = [_write_temp(module, directory, content, ".check-")]
    try:
        if check.get("environment") is not None:
            made.append(
                _write_temp(
                    module, directory, format_environment(check["environment"]), ".env-", ""
                )
            )
            check = {**check, "environment_file": made[-1]}
        for tmp in made:
            if group:
                module.set_group_if_different(tmp, group, False)
            os.chmod(tmp, 0o640)
        rc, out, err, cmd = run_check(gunicorn, made[0], check)
    finally:
        for tmp in made:
            os.unlink(tmp)
    output = (out + err).strip()[-TAIL:]
    if rc != 0:
        module.fail_json(
            msg=f"Gunicorn rejected the new {path} (live file left unchanged): {output}",
            rc=rc,
            cmd=cmd,
            stderr=err[-TAIL:],
            stdout=out[-TAIL:],
        )
    return output


def main() -> None:
    """Run the module."""
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            venv=dict(type="path", required=True),
            settings=dict(type="dict", default={}),
            hooks=dict(type="dict", default={}),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0640"),
            check=dict(
                type="dict",
                options=dict(
                    wsgi_app=dict(type="str", required=True),
                    chdir=dict(type="path", required=True),
                    user=dict(type="str"),
                    group=dict(type="str"),
                    environment_file=dict(type="path"),
                    environment=dict(type="dict", no_log=True),
                    properties=dict(type="dict"),
                ),
            ),
            force_check=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    path: str = module.params["path"]
    venv: str = module.params["venv"]
    settings: dict[str, Any] = module.params["settings"]
    python = os.path.join(venv, "bin", "python")

    try:
        hooks = {
            name: normalize_hook(name, str(src)) for name, src in module.params["hooks"].items()
        }
        content = render(settings, hooks)
    except ConfigError as exc:
        module.fail_json(msg=f"Cannot write {path}: {exc}")

    version = None
    if os.path.exists(python):
        try:
            result = validate(python, settings, hooks)
        except ConfigError as exc:
            module.fail_json(msg=to_native(exc))
        version = result.get("version")
        if result["errors"]:
            module.fail_json(
                msg=f"Cannot write {path}: " + "; ".join(result["errors"]),
                gunicorn_version=version,
            )
    elif module.check_mode:
        module.warn(f"{python} does not exist yet: settings were not validated")
    else:
        module.fail_json(msg=f"Cannot validate settings: {python} does not exist")

    try:
        before = _read(path)
    except OSError as exc:
        module.fail_json(msg=f"Cannot read {path}: {to_native(exc)}")
    changed = before != content
    old_settings, old_hooks = parse(before) if before is not None else ({}, {})
    restart = restart_settings(old_settings, settings, old_hooks, hooks) if changed else []

    res: dict[str, Any] = dict(
        changed=changed,
        settings=settings,
        gunicorn_version=version,
        restart_required=bool(restart),
        restart_settings=restart,
    )
    if module._diff:
        res["diff"] = dict(
            before=before or "", after=content, before_header=path, after_header=path
        )

    check = module.params["check"]
    if check and (changed or module.params["force_check"] or _environment_changes(check)):
        if module.check_mode:
            module.warn(f"check mode: gunicorn --check-config was not run for {path}")
        else:
            res["check_output"] = _check(module, path, content, check)

    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        try:
            tmp = _write_temp(module, directory, content, ".gunicorn-")
        except OSError as exc:
            module.fail_json(msg=f"Cannot write {path}: {to_native(exc)}")
        module.atomic_move(tmp, path)

    file_args = module.load_file_common_arguments(
        dict(
            path=path,
            owner=module.params["owner"],
            group=module.params["group"],
            mode=module.params["mode"],
        )
    )
    if os.path.exists(path):
        res["changed"] = module.set_fs_attributes_if_different(file_args, res["changed"])
    module.exit_json(**res)


if __name__ == "__main__":
    main()
