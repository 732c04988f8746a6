# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``gunicorn --check-config`` as the app would run (private to this collection)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Any

CHECK_TIMEOUT = 120


def systemd_is_init() -> bool:
    """Return True when systemd runs as PID 1 (the test sd_booted() makes)."""
    return os.path.isdir("/run/systemd/system")


def read_environment_file(path: str) -> dict[str, str]:
    """Parse a systemd EnvironmentFile: KEY=VALUE lines, # and ; comments, simple quotes."""
    env: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key, value = key.strip(), value.strip()
            if key.startswith("export "):
                key = key[len("export ") :].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key] = value
    return env


def format_environment(env: dict[str, Any]) -> str:
    """The KEY="VALUE" lines of a systemd EnvironmentFile, sorted, with \\ " $ ` escaped."""
    lines = []
    for key in sorted(env):
        value = str(env[key])
        for char in ("\\", '"', "$", "`"):
            value = value.replace(char, "\\" + char)
        lines.append(f'{key}="{value}"\n')
    return "".join(lines)


def environment_lines(text: str) -> list[str]:
    """The assignments of an EnvironmentFile's text, without comments and blank lines."""
    return [
        line.strip() for line in text.splitlines() if line.strip() and line.strip()[0] not in "#;"
    ]


def _property_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def build_command(gunicorn: str, conf: str, check: dict[str, Any]) -> tuple[list[str], dict]:
    """Return (argv, env) that run the check as the app's user in the app's directory.

    Under systemd the check runs as a transient service with the unit's sandbox
    properties; otherwise it runs through setpriv (or runuser) with the
    environment file read here, and ``properties`` cannot be honoured.
    """
    # --chdir on the command line overrides the file's chdir, so a new release is tried in its
    # own directory while the live config still points at the `current` link.
    inner = [
        gunicorn,
        "--check-config",
        "-c",
        conf,
        "--chdir",
        check["chdir"],
        check["wsgi_app"],
    ]
    user, group = check.get("user"), check.get("group")
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if systemd_is_init():
        argv = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--service-type=exec"]
        props: list[tuple[str, Any]] = [("WorkingDirectory", check["chdir"])]
        if user:
            props.append(("User", user))
        if group:
            props.append(("Group", group))
        if check.get("environment_file"):
            props.append(("EnvironmentFile", check["environment_file"]))
        props.extend(sorted((check.get("properties") or {}).items()))
        for key, value in props:
            argv.extend(["-p", f"{key}={_property_value(value)}"])
        return [*argv, "--", *inner], base_env
    env = dict(base_env)
    if check.get("environment_file"):
        env.update(read_environment_file(check["environment_file"]))
    if not user and not group:
        return inner, env
    if shutil.which("setpriv"):
        argv = ["setpriv"]
        if user:
            argv.append(f"--reuid={user}")
        if group:
            argv.append(f"--regid={group}")
        if user:
            argv.append("--init-groups")
        else:
            argv.append("--clear-groups")
        return [*argv, "--", *inner], env
    argv = ["runuser", "-u", user or "root"]
    if group:
        argv.extend(["-g", group])
    return [*argv, "--", *inner], env


def run_check(gunicorn: str, conf: str, check: dict[str, Any]) -> tuple[int, str, str, str]:
    """Run the check; return (rc, stdout, stderr, command line as text)."""
    argv, env = build_command(gunicorn, conf, check)
    cwd = None if systemd_is_init() else check["chdir"]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, "", f"no answer within {CHECK_TIMEOUT}s", shlex.join(argv)
    except OSError as exc:
        return 127, "", str(exc), shlex.join(argv)
    return proc.returncode, proc.stdout, proc.stderr, shlex.join(argv)
