"""The gunicorn_apps filter: precedence, computed defaults, and bad input named by app and key."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pyserve.gunicorn.plugins.filter.gunicorn_apps import (
    gunicorn_apps,
    gunicorn_transitions,
)

ROLE = {
    "version": "27.0.1",
    "settings": {},
    "app_root": "/srv/gunicorn",
    "config_root": "/etc/gunicorn",
    "socket_root": "/run/gunicorn",
    "log_target": "file",
    "hardening": "strict",
}
HOST = {"vcpus": 2, "memory_mb": 4096}


def resolve(apps: list[dict], **role) -> list[dict]:
    return gunicorn_apps(apps, {**ROLE, **role}, HOST)


def one(**app) -> dict:
    return resolve([{"name": "web", "wsgi_app": "app:app", **app}])[0]


def test_app_key_wins_over_app_settings_role_variable_and_gunicorn_settings():
    (app,) = resolve(
        [{"name": "web", "wsgi_app": "a:b", "timeout": 5, "settings": {"keepalive": 7}}],
        timeout=10,
        keepalive=8,
        settings={"timeout": 20, "keepalive": 9, "backlog": 64},
    )
    assert app["settings"]["timeout"] == 5
    assert app["settings"]["keepalive"] == 7
    assert app["settings"]["backlog"] == 64


def test_role_variable_wins_over_gunicorn_settings():
    app = resolve([{"name": "web", "wsgi_app": "a:b"}], timeout=10, settings={"timeout": 20})[0]
    assert app["settings"]["timeout"] == 10


def test_null_role_variables_leave_gunicorn_settings_in_force():
    app = resolve([{"name": "web", "wsgi_app": "a:b"}], timeout=None, settings={"timeout": 20})[0]
    assert app["settings"]["timeout"] == 20


def test_workers_are_computed_when_unset():
    assert one()["settings"]["workers"] >= 1


def test_worker_memory_caps_the_computed_workers():
    # 2 vCPUs give 5 sync workers by CPU; (4096 - 512) MiB / 1024 MiB per worker allow 3.
    assert one(worker_memory_mb=1024)["settings"]["workers"] == 3
    assert one()["settings"]["workers"] == 5


def test_app_worker_memory_wins_over_the_role_level_one():
    (app,) = resolve([{"name": "web", "wsgi_app": "a:b"}], worker_memory_mb=1024)
    assert app["settings"]["workers"] == 3
    (app,) = resolve(
        [{"name": "web", "wsgi_app": "a:b", "worker_memory_mb": 2048}], worker_memory_mb=1024
    )
    assert app["settings"]["workers"] == 1


def test_reserved_memory_is_left_to_the_host():
    (app,) = resolve([{"name": "web", "wsgi_app": "a:b"}], worker_memory_mb=1024)
    assert app["settings"]["workers"] == 3
    (app,) = resolve(
        [{"name": "web", "wsgi_app": "a:b"}], worker_memory_mb=1024, reserved_memory_mb=2048
    )
    assert app["settings"]["workers"] == 2


def test_explicit_workers_are_not_capped_by_memory():
    assert one(workers=9, worker_memory_mb=4096)["settings"]["workers"] == 9


@pytest.mark.parametrize("value", [0, -1, "lots"])
def test_bad_worker_memory_is_refused_naming_the_app_and_key(value):
    with pytest.raises(AnsibleFilterError, match="app 'web', key 'worker_memory_mb'"):
        one(worker_memory_mb=value)
    with pytest.raises(AnsibleFilterError, match="app 'web', key 'worker_memory_mb'"):
        one(worker_memory_mb=value, workers=2)


@pytest.mark.parametrize("value", [-1, "lots", True])
def test_bad_reserved_memory_is_refused_naming_the_variable(value):
    with pytest.raises(AnsibleFilterError, match="gunicorn_reserved_memory_mb"):
        resolve([{"name": "web", "wsgi_app": "a:b"}], reserved_memory_mb=value)


@pytest.mark.parametrize("value", [0, "lots"])
def test_bad_role_level_worker_memory_is_refused_naming_the_variable(value):
    with pytest.raises(AnsibleFilterError, match="gunicorn_worker_memory_mb"):
        resolve([{"name": "web", "wsgi_app": "a:b"}], worker_memory_mb=value)


def test_unix_socket_is_the_default_listener_outside_the_runtime_directory():
    app = one()
    assert app["listen_stream"] == "/run/gunicorn/web.sock"
    assert app["settings"]["bind"] == ["unix:/run/gunicorn/web.sock"]
    assert not app["listen_stream"].startswith(f"/run/{app['runtime_dir']}/")


def test_each_app_gets_its_own_control_socket():
    a, b = resolve([{"name": "a", "wsgi_app": "x:y"}, {"name": "b", "wsgi_app": "x:y"}])
    assert a["settings"]["control_socket"] != b["settings"]["control_socket"]


def test_stop_timeout_exceeds_graceful_timeout():
    app = one(graceful_timeout=60)
    assert app["timeout_stop_sec"] > 60


@pytest.mark.parametrize(
    "given", ["uvicorn", "uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker"]
)
def test_uvicorn_class_paths_install_the_maintained_worker(given):
    app = one(worker_class=given)
    assert app["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert "uvicorn-worker" in app["requirements"]


def test_gevent_installs_the_gunicorn_extra():
    assert one(worker_class="gevent")["requirements"][0] == "gunicorn[gevent]==27.0.1"


def test_a_dotted_worker_class_is_marked_for_an_import_check():
    assert one(worker_class="myproj.workers.Fast")["custom_worker_class"] is True


def test_environment_values_stay_out_of_the_resolved_view():
    app = one(environment={"TOKEN": "secret"})
    assert app["environment_keys"] == ["TOKEN"]
    assert "secret" not in repr(app)


@pytest.mark.parametrize(
    "apps, words",
    [
        ([{"name": "web", "wsgi_app": "a:b", "worker_class": "fast"}], ["'web'", "worker_class"]),
        ([{"name": "web", "wsgi_app": "a:b", "worker_class": "eventlet"}], ["Gunicorn 26"]),
        ([{"name": "web", "bind_type": "tcp", "bind_port": 0, "wsgi_app": "a"}], ["bind_port"]),
        ([{"name": "web"}], ["'web'", "wsgi_app"]),
        ([{"name": "my app", "wsgi_app": "a:b"}], ["'my app'", "name"]),
        ([{"name": "web.service", "wsgi_app": "a:b"}], ["name"]),
        ([{"name": "w", "wsgi_app": "a:b"}, {"name": "w", "wsgi_app": "a:b"}], ["two apps"]),
        (
            [{"name": "w", "wsgi_app": "a:b", "workers": 2, "settings": {"workers": 3}}],
            ["'workers'", "'settings.workers'"],
        ),
        ([{"name": "w", "wsgi_app": "a:b", "settings": {"daemon": True}}], ["settings.daemon"]),
        ([{"name": "w", "wsgi_app": "a:b", "environment": {"1X": "v"}}], ["environment"]),
        (
            [
                {"name": "a", "wsgi_app": "x", "bind_type": "tcp", "bind_port": 80},
                {"name": "b", "wsgi_app": "x", "bind_type": "tcp", "bind_port": 80},
            ],
            ["'b'", "bind_port"],
        ),
        (
            [
                {"name": "a", "wsgi_app": "x", "bind_type": "tcp", "bind_port": 80},
                {
                    "name": "b",
                    "wsgi_app": "x",
                    "bind_type": "tcp",
                    "bind_port": 80,
                    "bind_address": "0.0.0.0",
                },
            ],
            ["bind_port", "port 80"],
        ),
        (
            [
                {"name": "a", "wsgi_app": "x"},
                {"name": "b", "wsgi_app": "x", "socket_path": "/run/gunicorn/a.sock"},
            ],
            ["'b'", "socket_path"],
        ),
        ([{"name": "w", "wsgi_app": "x", "hardening": "isolated", "bind_type": "tcp"}], ["socket"]),
    ],
)
def test_bad_input_is_refused_naming_the_app_and_key(apps, words):
    with pytest.raises(AnsibleFilterError) as error:
        resolve(apps)
    for word in words:
        assert word in str(error.value)


def test_absent_apps_need_only_a_name_and_list_their_paths():
    (app,) = resolve([{"name": "old", "state": "absent"}])
    assert "/etc/systemd/system/old.service" in app["paths"]
    assert "/run/gunicorn/old.sock" in app["paths"]


def test_removal_also_takes_a_venv_kept_outside_the_app_directory():
    (app,) = resolve([{"name": "old", "state": "absent", "venv_dir": "/opt/venvs/old/"}])
    assert {"/opt/venvs/old", "/opt/venvs/old.previous", "/opt/venvs/olds"} <= set(app["paths"])


def test_role_level_verify_timeout_applies_unless_the_app_sets_its_own():
    a, b = resolve(
        [{"name": "a", "wsgi_app": "x:y"}, {"name": "b", "wsgi_app": "x:y", "verify_timeout": 5}],
        verify_timeout=90,
    )
    assert (a["verify_timeout"], b["verify_timeout"]) == (90, 5)


def result(name: str, **fields) -> dict:
    return {"item": {"name": name}, "ansible_loop_var": "item", **fields}


@pytest.mark.parametrize(
    "registered, action",
    [
        ({}, "none"),
        ({"config": {"results": [result("w", changed=True)]}}, "reload"),
        (
            {
                "config": {
                    "results": [
                        result(
                            "w",
                            changed=True,
                            restart_required=True,
                            restart_settings=["preload_app"],
                        )
                    ]
                }
            },
            "restart",
        ),
        ({"env": {"results": [result("w", changed=True)]}}, "restart"),
        ({"switch": {"results": [result("w", stdout="venv /old /older")]}}, "restart"),
        ({"switch": {"results": [result("w", stdout="release /old /older")]}}, "reload"),
        ({"link": {"results": [result("w", changed=True)]}}, "restart"),
        ({"socket": {"results": [result("w", changed=True)]}}, "relisten"),
    ],
)
def test_transition_follows_what_changed(registered, action):
    (move,) = gunicorn_transitions([{"name": "w"}], **registered)
    assert move["action"] == action


def test_transition_of_one_app_does_not_touch_another():
    moves = gunicorn_transitions(
        [{"name": "a"}, {"name": "b"}], env={"results": [result("a", changed=True)]}
    )
    assert [m["action"] for m in moves] == ["restart", "none"]


def test_a_new_release_of_a_preloaded_app_restarts():
    switched = {"switch": {"results": [result("w", stdout="release /old /older")]}}
    (move,) = gunicorn_transitions([{"name": "w", "settings": {"preload_app": True}}], **switched)
    assert (move["action"], move["reasons"]) == ("restart", ["release with preload_app"])


def test_a_new_app_is_started_whatever_its_files_report():
    socket = {"socket": {"results": [result("w", changed=True)]}}
    (move,) = gunicorn_transitions([{"name": "w"}], new=["w"], **socket)
    assert (move["action"], move["units_changed"]) == ("start", True)
