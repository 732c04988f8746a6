# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render, parse and validate gunicorn.conf.py files (private to this collection).

Standard library only: this runs on the managed host under its system Python.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import textwrap
from typing import Any

HEADER = (
    "# Managed by Ansible (pyserve.gunicorn.gunicorn_config): edits here are overwritten.\n"
    "# Each setting is a Python literal under Gunicorn's own name.\n"
)
HOOKS_MARKER = "# ---- Server hooks (kept verbatim from the play) ----\n"

# Settings whose new value a HUP does not bring into effect, with the reason
# read from gunicorn/arbiter.py (reload(), start(), run()). Keep docs/plugins.md
# and the module documentation in step with this table.
RESTART_SETTINGS: dict[str, str] = {
    "backlog": "a listen() option, applied once when the listener is created",
    "bind": "a HUP rebinds as the unprivileged master and drops sockets passed by systemd",
    "chdir": "the master's working directory and sys.path entry are set once at start",
    "control_socket": "the control server is started once in run(); reload() leaves it",
    "control_socket_disable": "the control server is started once in run(); reload() leaves it",
    "control_socket_mode": "the socket mode is applied when the control server starts",
    "daemon": "daemonizing happens once, before the master loop",
    "group": "the master keeps its group; only root could hand workers another one",
    "initgroups": "the master keeps its groups; only root could hand workers others",
    "preload_app": "the master caches the imported app; a HUP does not import it again",
    "pythonpath": "sys.path entries are added once, before the arbiter starts",
    "reuse_port": "a socket option, applied once when the listener is created",
    "user": "the master keeps its user; only root could hand workers another one",
    "worker_class": "the class's own check_config() runs only when the master starts",
}
# Hooks that Gunicorn calls once, when the master starts: a new body would not run until then.
RESTART_HOOKS: dict[str, str] = {
    "on_starting": "called once from Arbiter.start()",
    "when_ready": "called once from Arbiter.start()",
}
# The dirty arbiter (Gunicorn >= 25) is forked at start with its own copy of the config.
RESTART_PREFIXES: dict[str, str] = {
    "dirty_": "the dirty arbiter keeps the config it was forked with",
}

# Runs under VENV/bin/python: applies every setting through Gunicorn's own validators.
_VALIDATOR = r"""
import difflib, json, sys, traceback
req = json.load(sys.stdin)
out = {"errors": [], "version": None}
try:
    import gunicorn
    from gunicorn.config import Config
except Exception as exc:
    out["errors"].append("cannot import gunicorn: %s" % exc)
    print(json.dumps(out))
    sys.exit(0)
out["version"] = gunicorn.__version__
cfg = Config()
known = sorted(cfg.settings)
hooks = sorted(n for n, s in cfg.settings.items() if s.section == "Server Hooks")
out["hooks"] = hooks
def unknown(kind, name, pool):
    msg = "unknown %s %r for gunicorn %s" % (kind, name, gunicorn.__version__)
    near = difflib.get_close_matches(name, pool, n=1)
    if near:
        msg += "; did you mean %r?" % near[0]
    out["errors"].append(msg)
for name, value in sorted(req["settings"].items()):
    if name not in cfg.settings:
        unknown("setting", name, known)
    elif name in hooks:
        out["errors"].append("%r is a server hook: give its source under hooks" % name)
    else:
        try:
            cfg.set(name, value)
        except Exception as exc:
            out["errors"].append("invalid value for setting %r: %s" % (name, exc))
for name, source in sorted(req["hooks"].items()):
    if name not in hooks:
        unknown("hook", name, hooks)
        continue
    scope = {}
    try:
        exec(compile(source, "<hook %s>" % name, "exec"), scope)
        cfg.set(name, scope[name])
    except Exception as exc:
        out["errors"].append("invalid hook %r: %s" % (name, exc))
print(json.dumps(out))
"""


class ConfigError(Exception):
    """A setting, a hook or the Gunicorn installation is not usable."""


def normalize_hook(name: str, source: str) -> str:
    """Return the hook source dedented, with no trailing blanks, ending in one newline.

    Raises ConfigError when the source is not Python or defines no function ``name``.
    """
    text = textwrap.dedent(source).strip("\n")
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ConfigError(f"hook {name!r} is not valid Python: {exc}") from exc
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if name not in defined:
        raise ConfigError(f"hook {name!r} must define a top-level function named {name!r}")
    return text


def render(settings: dict[str, Any], hooks: dict[str, str]) -> str:
    """Render the config file text: sorted ``name = repr(value)`` lines, then the hooks."""
    lines = [HEADER, "\n"]
    for name in sorted(settings):
        value = settings[name]
        literal = repr(value)
        if ast.literal_eval(literal) != value:
            raise ConfigError(f"setting {name!r} cannot be written as a Python literal")
        lines.append(f"{name} = {literal}\n")
    if hooks:
        lines.append("\n")
        lines.append(HOOKS_MARKER)
        for name in sorted(hooks):
            lines.append("\n\n")
            lines.append(hooks[name])
    return "".join(lines)


def parse(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Read settings and hook sources from a config file without executing it.

    Top-level ``name = <literal>`` assignments become settings; a value that is
    not a literal is kept as its source text so a change to it is still noticed.
    Top-level functions become hooks, as their normalised source.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}, {}
    settings: dict[str, Any] = {}
    hooks: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    settings[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    settings[target.id] = ("<expression>", ast.get_source_segment(text, node))
        elif isinstance(node, ast.FunctionDef):
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            segment = "\n".join(text.splitlines()[start - 1 : node.end_lineno])
            hooks[node.name] = normalize_hook(node.name, segment)
    return settings, hooks


def restart_settings(
    old: dict[str, Any],
    new: dict[str, Any],
    old_hooks: dict[str, str],
    new_hooks: dict[str, str],
) -> list[str]:
    """Return the sorted names of changed settings and hooks that a HUP cannot apply."""
    names = set()
    for name in set(old) | set(new):
        if old.get(name, _MISSING) == new.get(name, _MISSING):
            continue
        if name in RESTART_SETTINGS or name.startswith(tuple(RESTART_PREFIXES)):
            names.add(name)
    for name in RESTART_HOOKS:
        if old_hooks.get(name) != new_hooks.get(name):
            names.add(name)
    return sorted(names)


_MISSING = object()


def validate(python: str, settings: dict[str, Any], hooks: dict[str, str]) -> dict[str, Any]:
    """Validate settings and hooks with the Gunicorn importable by ``python``.

    Returns ``{"version": str, "errors": [str, ...], "hooks": [names]}``.
    Raises ConfigError when the interpreter cannot run the validator at all.
    """
    request = json.dumps({"settings": settings, "hooks": hooks})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run(
            [python, "-I", "-c", _VALIDATOR],
            input=request,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"Cannot run {python}: {exc}") from exc
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        tail = proc.stderr.strip()[-2000:]
        raise ConfigError(f"Cannot validate settings with {python}: {tail}") from exc
    return result
