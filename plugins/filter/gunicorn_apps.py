"""Resolve the role's app list into one effective view per app, and reject bad input."""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

# The documentation of each filter of this file is in the YAML file of its name beside it.

# Names that systemd accepts in a unit name, kept to the safe subset: no "@" (templates) and no
# "\" escapes, so NAME.service and NAME.socket mean what they say.
UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OCTAL_MODE = re.compile(r"^0?[0-7]{3}$")

# Gunicorn's bare worker-class names (gunicorn/workers/__init__.py), with what each needs.
WORKER_CLASSES: dict[str, dict[str, Any]] = {
    "sync": {"extras": [], "packages": []},
    "gthread": {"extras": [], "packages": []},
    "gevent": {"extras": ["gevent"], "packages": []},
    "gevent_wsgi": {"extras": ["gevent"], "packages": []},
    "gevent_pywsgi": {"extras": ["gevent"], "packages": []},
    "tornado": {"extras": ["tornado"], "packages": []},
    "asgi": {"extras": [], "packages": []},
}
UVICORN_CLASS = "uvicorn_worker.UvicornWorker"
# The old class path from uvicorn itself is deprecated; both names run the maintained package.
UVICORN_ALIASES = {"uvicorn", "uvicorn.workers.UvicornWorker", UVICORN_CLASS}
ASYNC_CLASSES = {"gevent", "gevent_wsgi", "gevent_pywsgi", "tornado", "asgi", UVICORN_CLASS}

# App keys that are Gunicorn settings under another or the same name.
APP_SETTING_KEYS = {
    "workers": "workers",
    "worker_class": "worker_class",
    "threads": "threads",
    "timeout": "timeout",
    "graceful_timeout": "graceful_timeout",
    "keepalive": "keepalive",
    "max_requests": "max_requests",
    "max_requests_jitter": "max_requests_jitter",
    "log_level": "loglevel",
}
COMPUTED_SETTINGS = {
    "worker_class": "sync",
    "timeout": 30,
    "graceful_timeout": 30,
    "keepalive": 2,
    "max_requests": 0,
    "max_requests_jitter": 0,
    "loglevel": "info",
}
# Settings the role derives from app keys and the host layout; giving them in `settings` would
# make two sources of truth, so they are refused with the key to use instead.
MANAGED_SETTINGS = {
    "bind": "bind_type, bind_address, bind_port or socket_path",
    "wsgi_app": "wsgi_app",
    "user": "user",
    "group": "group",
    "daemon": "nothing: systemd supervises the master, so it must stay in the foreground",
    "control_socket": "nothing: the role gives each app its own control socket",
    "accesslog": "log_target and log_dir",
    "errorlog": "log_target and log_dir",
}
LISTEN_DEFAULTS = {"bind_type": "socket", "bind_address": "127.0.0.1", "bind_port": 8000}
HARDENING_LEVELS = ("strict", "isolated", "relaxed")
# Seconds that systemd waits beyond graceful_timeout before it kills what is left: in-flight
# requests get the whole graceful_timeout, and the master has time to reap its workers.
STOP_MARGIN = 15


def _fail(app: str, key: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"gunicorn_apps: app '{app}', key '{key}': {message}")


def _first(*values: Any) -> Any:
    """Return the first value that is not None."""
    return next((v for v in values if v is not None), None)


def _version_major(version: str) -> int | None:
    match = re.match(r"^\s*(\d+)", version or "")
    return int(match.group(1)) if match else None


def _worker_class(name: str, raw: Any, version: str) -> tuple[str, list[str], list[str], bool]:
    """Return (class, gunicorn extras, extra packages, is_custom) for a worker_class value."""
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(name, "worker_class", f"must be a non-empty string, got {raw!r}")
    value = raw.strip()
    if value in UVICORN_ALIASES:
        return UVICORN_CLASS, [], ["uvicorn-worker"], False
    if value in WORKER_CLASSES:
        spec = WORKER_CLASSES[value]
        return value, list(spec["extras"]), list(spec["packages"]), False
    if value == "eventlet":
        major = _version_major(version)
        if major is None or major >= 26:
            raise _fail(
                name,
                "worker_class",
                "'eventlet' was removed in Gunicorn 26; use 'gevent' for a green-thread worker "
                "or 'gthread' for threads",
            )
        return value, ["eventlet"], [], False
    if re.match(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$", value):
        # A dotted path is imported in the venv before anything live changes.
        return value, [], [], True
    known = ", ".join(sorted([*WORKER_CLASSES, "uvicorn"]))
    raise _fail(
        name,
        "worker_class",
        f"unknown worker class {value!r}: use one of {known}, or a dotted path to a class",
    )


def _int_in(name: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except ValueError:
            raise _fail(name, key, f"must be a whole number, got {value!r}") from None
    if not low <= value <= high:
        raise _fail(name, key, f"must be between {low} and {high}, got {value}")
    return value


def _listener(app: dict, role: dict, name: str) -> dict[str, Any]:
    """Work out the socket unit's ListenStream, Gunicorn's bind and the verify target."""
    bind_type = _first(app.get("bind_type"), role.get("bind_type"), LISTEN_DEFAULTS["bind_type"])
    if bind_type not in ("socket", "tcp"):
        raise _fail(name, "bind_type", f"must be 'socket' or 'tcp', got {bind_type!r}")
    if bind_type == "socket":
        path = app.get("socket_path") or f"{role['socket_root'].rstrip('/')}/{name}.sock"
        if not str(path).startswith("/"):
            raise _fail(name, "socket_path", f"must be an absolute path, got {path!r}")
        return {
            "bind_type": "socket",
            "socket_path": path,
            "listen_stream": path,
            "bind": f"unix:{path}",
            "listen_key": f"unix:{path}",
            "verify_base": "http://localhost",
            "verify_curl_args": ["--unix-socket", path],
        }
    address = str(
        _first(app.get("bind_address"), role.get("bind_address"), LISTEN_DEFAULTS["bind_address"])
    )
    port = _int_in(
        name,
        "bind_port",
        _first(app.get("bind_port"), role.get("bind_port"), LISTEN_DEFAULTS["bind_port"]),
        1,
        65535,
    )
    host = f"[{address}]" if ":" in address else address
    probe = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    probe_host = f"[{probe}]" if ":" in probe else probe
    return {
        "bind_type": "tcp",
        "bind_address": address,
        "bind_port": port,
        "listen_stream": f"{host}:{port}",
        "bind": f"{host}:{port}",
        "listen_key": f"tcp:{host}:{port}",
        "listen_any": address in ("0.0.0.0", "::"),
        "listen_addr": address,
        "verify_base": f"http://{probe_host}:{port}",
        "verify_curl_args": [],
    }


def _settings(
    app: dict, role: dict, name: str, host: dict, present: int, sizing: Callable | None
) -> dict:
    """Merge Gunicorn settings by the documented precedence and size the workers."""
    app_settings = dict(app.get("settings") or {})
    for key, setting in APP_SETTING_KEYS.items():
        if app.get(key) is not None and setting in app_settings:
            raise _fail(
                name,
                key,
                f"is given twice: as '{key}' and as 'settings.{setting}'; keep one",
            )
    for setting, use in MANAGED_SETTINGS.items():
        if setting in app_settings:
            raise _fail(name, f"settings.{setting}", f"is set by the role; use {use}")
        if setting in (role.get("settings") or {}):
            raise AnsibleFilterError(
                f"gunicorn_settings: key '{setting}' is set by the role per app; use {use}"
            )

    merged: dict[str, Any] = dict(COMPUTED_SETTINGS)
    merged.update(role.get("settings") or {})
    for key, setting in APP_SETTING_KEYS.items():
        if role.get(key) is not None:
            merged[setting] = role[key]
    merged.update(app_settings)
    for key, setting in APP_SETTING_KEYS.items():
        if app.get(key) is not None:
            merged[setting] = app[key]

    worker_memory = app.get("worker_memory_mb")
    if worker_memory is not None:
        worker_memory = _int_in(name, "worker_memory_mb", worker_memory, 1, 1_000_000)
    elif role.get("worker_memory_mb") is not None:
        worker_memory = _role_count(role, "worker_memory_mb", 1)
    if "workers" not in merged or "threads" not in merged:
        worker_class = merged["worker_class"]
        kind = "async" if worker_class in ASYNC_CLASSES else worker_class
        if sizing is None:
            raise AnsibleFilterError("gunicorn_apps: the gunicorn_workers filter is unavailable")
        sized = sizing(
            host.get("vcpus") or 1,
            memory_mb=host.get("memory_mb"),
            reserved_mb=_role_count(role, "reserved_memory_mb", 0, 512),
            worker_memory_mb=worker_memory,
            worker_class=kind if kind in ("sync", "gthread") else "gevent",
            apps=present,
        )
        merged.setdefault("workers", sized["workers"])
        merged.setdefault("threads", sized["threads"])
    for key in ("workers", "threads", "timeout", "graceful_timeout", "keepalive"):
        low = 0 if key in ("timeout", "keepalive") else 1
        merged[key] = _int_in(name, key, merged[key], low, 100000)
    return merged


def _role_count(role: dict, key: str, low: int, default: int | None = None) -> int:
    """A role-level number of MiB, checked and named by its variable, gunicorn_KEY."""
    value = _first(role.get(key), default)
    try:
        number = int(str(value), 10)
    except ValueError:
        number = low - 1
    if isinstance(value, bool) or number < low:
        raise AnsibleFilterError(
            f"gunicorn_{key} must be a whole number of MiB, {low} or more, got {value!r}"
        )
    return number


def _environment(app: dict, name: str) -> dict[str, str]:
    env = app.get("environment") or {}
    if not isinstance(env, dict):
        raise _fail(name, "environment", "must be a dict of variable names to values")
    out: dict[str, str] = {}
    for key, value in env.items():
        if not ENV_NAME.match(str(key)):
            raise _fail(name, "environment", f"{key!r} is not a valid environment variable name")
        if value is None or isinstance(value, (dict, list)):
            raise _fail(name, "environment", f"the value of {key} must be a string or a number")
        out[str(key)] = str(value)
    return out


def _directories(
    app_dir: str, out: dict, user: str, group: str, log_target: str, extra: list[str]
) -> list[dict[str, str]]:
    """The directories of one app.

    Code, config and venv belong to root and are readable by the app's group only: a compromised
    worker cannot rewrite what it runs. The log directory is the app's own.
    """
    dirs = [
        (app_dir, "root", group, "0750"),
        (out["config_dir"], "root", group, "0750"),
        *((path, "root", group, "0750") for path in extra),
    ]
    if log_target == "file":
        dirs.append((out["log_dir"], user, group, "0750"))
    return [{"path": p, "owner": o, "group": g, "mode": m} for p, o, g, m in dirs]


def _parents(directories: list[dict[str, str]]) -> list[str]:
    """The shared parents of an app's directories, which the role makes root-owned and 0755:
    left to the file module, they would get the owner and mode of the first app."""
    own = {d["path"] for d in directories}
    return sorted({posixpath.dirname(p.rstrip("/")) for p in own} - own - {"/", ""})


SOURCE_KEYS = {"dir": ("path",), "git": ("repo", "ref"), "pip": ("package",)}
HOOK_STAGES = ("before_switch", "after_switch", "fleet")


def _source(app: dict, name: str) -> dict[str, str] | None:
    """Check the app's `source`: a controller directory, a git ref, or a pip requirement."""
    source = app.get("source")
    if not source:
        return None
    if not isinstance(source, dict) or source.get("type") not in SOURCE_KEYS:
        raise _fail(name, "source", f"needs a type, one of {', '.join(SOURCE_KEYS)}")
    for key in SOURCE_KEYS[source["type"]]:
        if not source.get(key):
            raise _fail(name, f"source.{key}", f"is required for a source of type {source['type']}")
    unknown = set(source) - {"type", *SOURCE_KEYS[source["type"]]}
    if unknown:
        raise _fail(name, "source", f"unknown keys for type {source['type']}: {sorted(unknown)}")
    return {key: str(value) for key, value in source.items()}


def _deploy_hooks(app: dict, name: str) -> dict[str, list[str]]:
    """Check the deploy hooks: shell commands by stage, run as the app's user."""
    hooks = app.get("deploy_hooks") or {}
    if not isinstance(hooks, dict) or set(hooks) - set(HOOK_STAGES):
        raise _fail(name, "deploy_hooks", f"takes the stages {', '.join(HOOK_STAGES)}")
    out = {}
    for stage in HOOK_STAGES:
        commands = hooks.get(stage) or []
        if isinstance(commands, str):
            commands = [commands]
        if not all(isinstance(c, str) and c.strip() for c in commands):
            raise _fail(name, f"deploy_hooks.{stage}", "must be a list of shell commands")
        out[stage] = list(commands)
    return out


def _resolve_one(
    app: dict, role: dict, host: dict, present: int, sizing: Callable | None
) -> dict[str, Any]:
    name = app["name"]
    state = app.get("state") or "present"
    app_dir = app.get("app_dir") or f"{role['app_root'].rstrip('/')}/{name}"
    config_dir = f"{role['config_root'].rstrip('/')}/{name}"
    out: dict[str, Any] = {
        "name": name,
        "state": state,
        "app_dir": app_dir,
        "config_dir": config_dir,
        "config_path": f"{config_dir}/gunicorn.conf.py",
        "env_file": f"{config_dir}/environment",
        "log_dir": app.get("log_dir")
        or f"{str(role.get('log_dir') or '/var/log/gunicorn').rstrip('/')}/{name}",
        "runtime_dir": f"gunicorn-{name}",
    }
    # Everything of this app that removal deletes; users and groups are left alone.
    out["paths"] = [
        f"/etc/systemd/system/{name}.service",
        f"/etc/systemd/system/{name}.socket",
        f"/etc/logrotate.d/gunicorn-{name}",
        config_dir,
        app_dir,
        out["log_dir"],
        app.get("socket_path") or f"{role['socket_root'].rstrip('/')}/{name}.sock",
    ]
    if app.get("venv_dir"):
        # A venv outside the app directory: its link, the previous link and the keyed venvs.
        venv_dir = app["venv_dir"].rstrip("/")
        out["paths"] += [venv_dir, f"{venv_dir}.previous", f"{venv_dir}s"]
    if state == "absent":
        return out

    if not app.get("wsgi_app"):
        raise _fail(name, "wsgi_app", "is required, e.g. 'proj.wsgi:application'")
    version = str(_first(app.get("gunicorn_version"), role.get("version"), ""))
    settings = _settings(app, role, name, host, present, sizing)
    worker_class, extras, packages, custom = _worker_class(name, settings["worker_class"], version)
    settings["worker_class"] = worker_class
    if worker_class != "gthread" and app.get("threads") is None:
        # Only gthread uses threads; keep the config honest for every other class.
        settings["threads"] = (
            1 if "threads" not in (app.get("settings") or {}) else settings["threads"]
        )

    listener = _listener(app, role, name)
    user = app.get("user") or name
    group = app.get("group") or user
    source = _source(app, name)
    # With a source, the code lives in releases/ID and `current` points at the live one.
    chdir = app.get("chdir") or (f"{app_dir}/current" if source else app_dir)
    log_target = app.get("log_target") or role.get("log_target") or "file"
    if log_target not in ("file", "journal"):
        raise _fail(name, "log_target", f"must be 'file' or 'journal', got {log_target!r}")
    hardening = app.get("hardening") or role.get("hardening") or "strict"
    if hardening not in HARDENING_LEVELS:
        raise _fail(name, "hardening", f"must be one of {', '.join(HARDENING_LEVELS)}")
    if hardening == "isolated" and listener["bind_type"] != "socket":
        raise _fail(
            name,
            "hardening",
            "'isolated' allows only the Unix socket that systemd passes in; use bind_type "
            "'socket' or hardening 'strict'",
        )
    socket_mode = str(app.get("socket_mode") or "0660")
    if not OCTAL_MODE.match(socket_mode):
        raise _fail(name, "socket_mode", f"must be an octal mode such as '0660', got {socket_mode}")

    major = _version_major(version)
    settings.update(
        {
            "bind": [listener["bind"]],
            "wsgi_app": app["wsgi_app"],
            "chdir": chdir,
            "proc_name": name,
            # A tmpfs keeps the workers' heartbeat off the disk, where a slow write would make
            # the master think a busy worker hung.
            "worker_tmp_dir": settings.get("worker_tmp_dir", "/dev/shm"),
        }
    )
    if log_target == "file":
        settings["accesslog"] = f"{out['log_dir']}/access.log"
        settings["errorlog"] = f"{out['log_dir']}/error.log"
    else:
        settings["accesslog"] = "-"
        settings["errorlog"] = "-"
    control_socket = None
    if major is None or major >= 26:
        # Gunicorn's default path sits under the user's home, which service users lack, and two
        # apps of one user would share it; each app gets one in its own runtime directory.
        control_socket = f"/run/{out['runtime_dir']}/control.sock"
        settings["control_socket"] = control_socket

    pin = f"=={version}" if version else ""
    extra = f"[{','.join(extras)}]" if extras else ""
    requirements = [f"gunicorn{extra}{pin}", *packages, *(app.get("packages") or [])]
    if source and source["type"] == "pip":
        requirements.append(source["package"])
    # One venv per dependency set, shared by every release with the same set: a code-only
    # release reuses it, and a rollback brings the old dependencies back with the old code.
    venv_key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    venv_dir = app.get("venv_dir") or f"{app_dir}/venv"

    unit_settings = app.get("unit_settings") or {}
    if not isinstance(unit_settings, dict):
        raise _fail(name, "unit_settings", "must be a dict of [Service] directives to values")
    out.update(
        {
            "wsgi_app": app["wsgi_app"],
            "user": user,
            "group": group,
            "create_user": app.get("create_user", True),
            "chdir": chdir,
            "venv_dir": venv_dir,
            "venv_key": venv_key,
            "venv_path": f"{venv_dir}s/{venv_key}",
            "source": source,
            "releases_dir": f"{app_dir}/releases",
            "releases_keep": _int_in(name, "releases_keep", app.get("releases_keep", 5), 2, 1000),
            "deploy_hooks": _deploy_hooks(app, name),
            "gunicorn_version": version,
            "requirements": requirements,
            "worker_class": worker_class,
            "custom_worker_class": custom,
            "settings": settings,
            "hooks": app.get("hooks") or {},
            # Only the names: values stay in gunicorn_apps, out of every registered fact.
            "environment_keys": sorted(_environment(app, name)),
            "log_target": log_target,
            "hardening": hardening,
            "socket_user": app.get("socket_user") or user,
            "socket_group": app.get("socket_group") or "www-data",
            "socket_mode": socket_mode,
            "unit_settings": unit_settings,
            "timeout_stop_sec": settings["graceful_timeout"] + STOP_MARGIN,
            "control_socket": control_socket,
            # Code, config and venv belong to root, readable by the app's group; only the log
            # directory is the app's own.
            "directories": _directories(
                app_dir,
                out,
                user,
                group,
                log_target,
                [f"{venv_dir}s", *([f"{app_dir}/releases"] if source else [])],
            ),
            "verify_path": app.get("verify_path") or role.get("verify_path") or "/",
            "verify_status": int(app.get("verify_status") or role.get("verify_status") or 200),
            "verify_timeout": int(app.get("verify_timeout") or role.get("verify_timeout") or 30),
            **listener,
        }
    )
    out["parents"] = _parents(out["directories"])
    return out


def _check_unique(resolved: list[dict]) -> None:
    seen: dict[str, str] = {}
    for app in resolved:
        if app["state"] != "present":
            continue
        key = app["listen_key"]
        if key in seen:
            raise _fail(
                app["name"],
                "socket_path" if app["bind_type"] == "socket" else "bind_port",
                f"listens on {app['listen_stream']} like app '{seen[key]}'",
            )
        seen[key] = app["name"]
    # A wildcard TCP bind clashes with any address on the same port.
    ports: dict[int, list[dict]] = {}
    for app in resolved:
        if app["state"] == "present" and app["bind_type"] == "tcp":
            ports.setdefault(app["bind_port"], []).append(app)
    for port, apps in ports.items():
        if len(apps) > 1 and any(a.get("listen_any") for a in apps):
            raise _fail(
                apps[1]["name"], "bind_port", f"port {port} is also used by '{apps[0]['name']}'"
            )


def gunicorn_apps(apps: Any, role: dict, host: dict) -> list[dict[str, Any]]:
    """Return the resolved view of every app, or raise AnsibleFilterError on bad input."""
    if not isinstance(apps, list):
        raise AnsibleFilterError(f"gunicorn_apps must be a list, got {type(apps).__name__}")
    try:
        from ansible_collections.pyserve.gunicorn.plugins.filter.gunicorn_workers import (
            gunicorn_workers as sizing,
        )
    except ImportError:
        sizing = None

    names: set[str] = set()
    for index, app in enumerate(apps):
        if not isinstance(app, dict):
            raise AnsibleFilterError(f"gunicorn_apps[{index}] must be a dict")
        name = app.get("name")
        if not name:
            raise AnsibleFilterError(f"gunicorn_apps[{index}]: key 'name' is required")
        if not UNIT_NAME.match(str(name)) or str(name).endswith((".service", ".socket")):
            raise _fail(
                str(name),
                "name",
                "is not a valid unit name: use letters, digits, '_', '.', ':' or '-', starting "
                "with a letter or digit, without a .service or .socket suffix",
            )
        if name in names:
            raise _fail(name, "name", "is used by two apps")
        names.add(name)

    present = sum(1 for a in apps if (a.get("state") or "present") == "present")
    resolved = [_resolve_one(app, role, host, max(present, 1), sizing) for app in apps]
    _check_unique(resolved)
    return resolved


def _changed_by_name(registered: Any) -> dict[str, dict]:
    """Map app name to the result of one registered loop over apps."""
    out: dict[str, dict] = {}
    for result in (registered or {}).get("results", []) if isinstance(registered, dict) else []:
        app = result.get(result.get("ansible_loop_var", "item")) or {}
        if isinstance(app, dict) and "name" in app:
            out[app["name"]] = result
    return out


def gunicorn_transitions(
    apps: list[dict], new: list[str] | None = None, **registered: Any
) -> list[dict[str, Any]]:
    """Decide per app how it moves to its new state, from what the configure step reported.

    `new` names the apps that nothing ran for before this run: they are just started.
    `registered` holds the registered loop results by step: `socket`, `service`, `env`, `link`
    (first deploys), `switch` (new releases and venvs) and `config`. The order of the checks is
    the order of their cost to users: a new listener needs the socket unit restarted
    (connections are refused meanwhile); a new interpreter, environment or unit needs the
    service restarted (connections wait in the socket's backlog); a config change that Gunicorn
    re-reads on HUP needs only a reload (nothing waits).
    """
    steps = {key: _changed_by_name(value) for key, value in registered.items()}
    moves = []
    for app in apps:
        name = app["name"]
        if name in (new or []):
            # The units are new: daemon-reload, then the start that every run makes.
            moves.append(
                {"name": name, "action": "start", "reasons": ["new app"], "units_changed": True}
            )
            continue

        def changed(step: str, _name: str = name) -> bool:
            return bool(steps.get(step, {}).get(_name, {}).get("changed"))

        config = steps.get("config", {}).get(name, {})
        switched = steps.get("switch", {}).get(name, {}).get("stdout", "")
        reasons: list[str] = []
        if changed("socket"):
            action, reasons = "relisten", ["socket unit"]
        else:
            reasons = [
                label
                for step, label in (
                    ("service", "service unit"),
                    ("env", "environment"),
                    ("link", "new venv"),
                )
                if changed(step)
            ]
            if "venv" in switched.split():
                reasons.append("new venv")
            if "release" in switched.split() and app.get("settings", {}).get("preload_app"):
                # A preloaded app lives in the master: only a new master loads new code.
                reasons.append("release with preload_app")
            if config.get("restart_required"):
                reasons.append("settings " + ", ".join(config.get("restart_settings") or []))
            if reasons:
                action = "restart"
            elif config.get("changed") or "release" in switched.split():
                # A HUP re-reads the config and forks workers that import the code afresh
                # through the `current` link.
                action = "reload"
                reasons = [
                    *(["settings"] if config.get("changed") else []),
                    *(["release"] if "release" in switched.split() else []),
                ]
            else:
                action = "none"
        moves.append(
            {
                "name": name,
                "action": action,
                "reasons": reasons,
                "units_changed": changed("socket") or changed("service"),
            }
        )
    return moves


def gunicorn_summary(
    apps: list[dict], moves: list[dict], verify: Any = None, info: Any = None
) -> list[str]:
    """Return one line per app: state, workers, listener, answer and latency."""
    by_move = {m["name"]: m for m in moves or []}
    by_verify = _changed_by_name(verify)
    by_info = _changed_by_name(info)
    lines = []
    for app in apps:
        name = app["name"]
        facts = by_info.get(name, {})
        answer = by_verify.get(name, {}).get("stdout", "")
        status, _, seconds = answer.partition(" ")
        workers = len(facts.get("workers") or [])
        move = by_move.get(name, {})
        reasons = f" ({', '.join(move['reasons'])})" if move.get("reasons") else ""
        latency = f"{float(seconds) * 1000:.1f} ms" if seconds else "not measured"
        lines.append(
            f"{name}: {facts.get('service_state', 'unknown')}, {move.get('action', 'none')}"
            f"{reasons}; {workers} x {app['worker_class']} workers, master "
            f"{facts.get('master_pid') or '-'}; {app['bind']} answered {status or '-'} "
            f"in {latency}"
        )
    return lines


def gunicorn_targets(apps: list[dict], live: Any, packed: dict) -> list[dict[str, Any]]:
    """Compare what each app runs now with what this run installed.

    `live` holds the registered readlink of each app's venv link and `current` link (empty when
    missing); `packed` the release of each app with a source, by name.
    """
    by_live = _changed_by_name(live)
    targets = []
    for app in apps:
        name = app["name"]
        lines = (by_live.get(name, {}).get("stdout") or "").split("\n")
        live_venv, live_release = ([*lines, "", ""])[:2]
        release = (packed or {}).get(name, {}).get("id") if app.get("source") else None
        release_dir = f"{app['releases_dir']}/{release}" if release else None
        first = not live_venv or bool(release_dir and not live_release)
        venv_changes = bool(live_venv) and live_venv != app["venv_path"]
        release_changes = bool(release_dir and live_release and live_release != release_dir)
        targets.append(
            {
                "name": name,
                "app_dir": app["app_dir"],
                "releases_dir": app["releases_dir"],
                "releases_keep": app["releases_keep"],
                "venv_dir": app["venv_dir"],
                "venv_path": app["venv_path"],
                "release": release,
                "release_dir": release_dir,
                "live_venv": live_venv,
                "live_release": live_release,
                "first_deploy": first,
                "switch": not first and (venv_changes or release_changes),
                "check_chdir": release_dir or app["chdir"],
            }
        )
    return targets


def gunicorn_hooks(pairs: list, stage: str) -> list[list[Any]]:
    """Return [app, target, command] for each deploy hook of `stage` that is due.

    `pairs` zips the resolved apps with their targets. Hooks are due for apps that get a new
    release or venv in this run, including their first deploy, and never otherwise: a run that
    changes nothing runs no hook.
    """
    if stage not in HOOK_STAGES:
        raise AnsibleFilterError(f"gunicorn_hooks: unknown stage {stage!r}")
    due = []
    for app, target in pairs:
        if target.get("switch") or target.get("first_deploy"):
            due.extend([app, target, command] for command in app["deploy_hooks"][stage])
    return due


class FilterModule:
    """The gunicorn_apps and gunicorn_transitions filters."""

    def filters(self) -> dict[str, Callable]:
        return {
            "gunicorn_apps": gunicorn_apps,
            "gunicorn_transitions": gunicorn_transitions,
            "gunicorn_summary": gunicorn_summary,
            "gunicorn_targets": gunicorn_targets,
            "gunicorn_hooks": gunicorn_hooks,
        }
