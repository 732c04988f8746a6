"""gunicorn_config against a real Gunicorn in a throwaway venv."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import stat
import tempfile
from pathlib import Path

import jinja2
import pytest
from ansible_collections.pyserve.gunicorn.plugins.module_utils._gunicorn_check import (
    environment_lines,
    format_environment,
)
from ansible_collections.pyserve.gunicorn.plugins.modules.gunicorn_config import main

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "x'\"\n\\ __import__('os').system('touch PWNED') \u00e9"


@pytest.fixture
def appdir():
    """A directory the unprivileged check user can enter, holding conf/ and app/."""
    root = Path(tempfile.mkdtemp(prefix="gunicorn-unit-"))
    root.chmod(0o755)
    (root / "conf").mkdir()
    (root / "app").mkdir()
    (root / "app" / "good.py").write_text("def app(environ, start_response):\n    return []\n")
    (root / "app" / "broken.py").write_text("import no_such_module_here\n")
    for sub in ("conf", "app"):
        (root / sub).chmod(0o755)
    yield root
    shutil.rmtree(root)


def args(venv, appdir, **extra):
    base = dict(path=str(appdir / "conf" / "gunicorn.conf.py"), venv=str(venv))
    base.update(extra)
    return base


def test_first_run_writes_sorted_literals_and_reports_changed(run_module, venv, appdir):
    result = run_module(main, args(venv, appdir, settings={"workers": 3, "bind": "127.0.0.1:8000"}))
    text = (appdir / "conf" / "gunicorn.conf.py").read_text()
    assert result["changed"] is True
    assert result["gunicorn_version"] == "27.0.1"
    assert text.startswith("# Managed by Ansible")
    assert text.index("bind = '127.0.0.1:8000'\n") < text.index("workers = 3\n")
    assert stat.S_IMODE(os.stat(appdir / "conf" / "gunicorn.conf.py").st_mode) == 0o640


def test_second_run_is_unchanged_and_byte_identical(run_module, venv, appdir):
    a = args(venv, appdir, settings={"workers": 3, "timeout": 30})
    run_module(main, a)
    first = (appdir / "conf" / "gunicorn.conf.py").read_bytes()
    result = run_module(main, a)
    assert result["changed"] is False
    assert result["restart_required"] is False
    assert (appdir / "conf" / "gunicorn.conf.py").read_bytes() == first


def test_hostile_string_is_a_literal_that_runs_nothing(run_module, venv, appdir):
    run_module(main, args(venv, appdir, settings={"proc_name": HOSTILE}))
    cwd = os.getcwd()
    os.chdir(appdir)
    try:
        loaded = runpy.run_path(str(appdir / "conf" / "gunicorn.conf.py"))
    finally:
        os.chdir(cwd)
    assert loaded["proc_name"] == HOSTILE
    assert not (appdir / "PWNED").exists()


def test_unknown_setting_fails_with_suggestion(run_module, venv, appdir):
    result = run_module(main, args(venv, appdir, settings={"worker": 2}))
    assert result["failed"] is True
    assert "unknown setting 'worker' for gunicorn 27.0.1; did you mean 'workers'?" in result["msg"]
    assert not (appdir / "conf" / "gunicorn.conf.py").exists()


def test_bad_value_fails_with_gunicorn_message_and_name(run_module, venv, appdir):
    result = run_module(main, args(venv, appdir, settings={"workers": "many"}))
    assert result["failed"] is True
    assert "'workers'" in result["msg"]
    assert "invalid literal for int()" in result["msg"]


def test_unknown_hook_fails(run_module, venv, appdir):
    hook = "def post_forke(server, worker):\n    pass\n"
    result = run_module(main, args(venv, appdir, hooks={"post_forke": hook}))
    assert result["failed"] is True
    assert "unknown hook 'post_forke'" in result["msg"]
    assert "did you mean 'post_fork'?" in result["msg"]


def test_hook_with_wrong_arity_fails(run_module, venv, appdir):
    result = run_module(main, args(venv, appdir, hooks={"post_fork": "def post_fork(x):\n  pass"}))
    assert result["failed"] is True
    assert "arity" in result["msg"]


def test_hook_is_kept_verbatim_after_settings(run_module, venv, appdir):
    hook = "    def post_fork(server, worker):\n        server.log.info('hi %s', worker.pid)\n"
    run_module(main, args(venv, appdir, settings={"workers": 2}, hooks={"post_fork": hook}))
    text = (appdir / "conf" / "gunicorn.conf.py").read_text()
    assert "def post_fork(server, worker):\n    server.log.info('hi %s', worker.pid)\n" in text
    assert text.index("workers = 2") < text.index("Server hooks") < text.index("def post_fork")


def test_check_mode_reports_diff_and_writes_nothing(run_module, venv, appdir):
    result = run_module(
        main, args(venv, appdir, settings={"workers": 2}), check_mode=True, diff=True
    )
    assert result["changed"] is True
    assert "workers = 2" in result["diff"]["after"]
    assert result["diff"]["before"] == ""
    assert not (appdir / "conf" / "gunicorn.conf.py").exists()


def test_check_mode_without_venv_warns_and_reports_changed(run_module, appdir):
    missing = appdir / "no-venv"
    result = run_module(main, args(missing, appdir, settings={"workers": 2}), check_mode=True)
    assert result["changed"] is True
    assert "not validated" in str(result["warnings"])


def test_diff_shows_old_and_new_value(run_module, venv, appdir):
    run_module(main, args(venv, appdir, settings={"workers": 2}))
    result = run_module(main, args(venv, appdir, settings={"workers": 4}), diff=True)
    assert "workers = 2" in result["diff"]["before"]
    assert "workers = 4" in result["diff"]["after"]


def test_workers_change_needs_only_a_reload(run_module, venv, appdir):
    run_module(main, args(venv, appdir, settings={"workers": 2, "bind": "127.0.0.1:8000"}))
    result = run_module(main, args(venv, appdir, settings={"workers": 4, "bind": "127.0.0.1:8000"}))
    assert result["changed"] is True
    assert result["restart_required"] is False
    assert result["restart_settings"] == []


def test_bind_and_preload_app_changes_need_a_restart(run_module, venv, appdir):
    run_module(main, args(venv, appdir, settings={"workers": 2, "bind": "127.0.0.1:8000"}))
    new = {"workers": 4, "bind": "127.0.0.1:9000", "preload_app": True}
    result = run_module(main, args(venv, appdir, settings=new))
    assert result["restart_required"] is True
    assert result["restart_settings"] == ["bind", "preload_app"]


def test_when_ready_hook_change_needs_a_restart(run_module, venv, appdir):
    hook = "def when_ready(server):\n    server.log.info('%s', {})\n"
    run_module(main, args(venv, appdir, hooks={"when_ready": hook.format(1)}))
    result = run_module(main, args(venv, appdir, hooks={"when_ready": hook.format(2)}))
    assert result["restart_settings"] == ["when_ready"]


def check_args(appdir, module, **extra):
    check = dict(wsgi_app=f"{module}:app", chdir=str(appdir / "app"))
    check.update(extra)
    return check


def test_check_passes_for_an_importable_app(run_module, venv, appdir):
    check = check_args(appdir, "good", user="nobody", group="nogroup")
    result = run_module(main, args(venv, appdir, settings={"workers": 2}, check=check))
    assert result.get("failed") is not True, result
    assert (appdir / "conf" / "gunicorn.conf.py").exists()
    assert [p.name for p in (appdir / "conf").iterdir()] == ["gunicorn.conf.py"]


def test_check_failure_leaves_live_file_untouched(run_module, venv, appdir):
    live = appdir / "conf" / "gunicorn.conf.py"
    run_module(main, args(venv, appdir, settings={"workers": 2}))
    before = live.read_bytes()
    check = check_args(appdir, "broken", user="nobody", group="nogroup")
    result = run_module(main, args(venv, appdir, settings={"workers": 3}, check=check))
    assert result["failed"] is True
    assert str(live) in result["msg"]
    assert "No module named 'no_such_module_here'" in result["msg"]
    assert live.read_bytes() == before
    assert [p.name for p in (appdir / "conf").iterdir()] == ["gunicorn.conf.py"]


def test_check_sees_the_environment_file(run_module, venv, appdir):
    (appdir / "app" / "envapp.py").write_text(
        "import os\nassert os.environ['SHOP_MODE'] == 'prod', 'SHOP_MODE missing'\n"
        "def app(environ, start_response):\n    return []\n"
    )
    envfile = appdir / "conf" / "environment"
    envfile.write_text("# comment\nSHOP_MODE=prod\n")
    check = check_args(appdir, "envapp", environment_file=str(envfile))
    result = run_module(main, args(venv, appdir, settings={"workers": 2}, check=check))
    assert result.get("failed") is not True, result


def test_unchanged_file_skips_check_unless_forced(run_module, venv, appdir):
    run_module(main, args(venv, appdir, settings={"workers": 2}))
    check = check_args(appdir, "broken")
    skipped = run_module(main, args(venv, appdir, settings={"workers": 2}, check=check))
    forced = run_module(
        main, args(venv, appdir, settings={"workers": 2}, check=check, force_check=True)
    )
    assert skipped["changed"] is False
    assert forced["failed"] is True


ENVAPP = (
    "import os\n"
    "mode = os.environ.get('SHOP_MODE')\n"
    "assert mode == 'prod', f'SHOP_MODE is {mode}'\n"
    "def app(environ, start_response):\n    return []\n"
)


def test_check_runs_with_the_given_environment_and_never_returns_its_values(
    run_module, venv, appdir
):
    (appdir / "app" / "envapp.py").write_text(ENVAPP)
    user = {"user": "nobody", "group": "nogroup"}
    good = check_args(appdir, "envapp", environment={"SHOP_MODE": "prod"}, **user)
    result = run_module(main, args(venv, appdir, settings={"workers": 2}, check=good))
    assert result.get("failed") is not True, result
    assert [p.name for p in (appdir / "conf").iterdir()] == ["gunicorn.conf.py"]

    bad = check_args(appdir, "envapp", environment={"SHOP_MODE": "s3cr3t-never-shown"}, **user)
    result = run_module(main, args(venv, appdir, settings={"workers": 3}, check=bad))
    assert result["failed"] is True
    assert "SHOP_MODE is" in result["msg"]
    assert "s3cr3t-never-shown" not in json.dumps(result)


def test_a_changed_environment_runs_the_check_though_the_file_is_unchanged(
    run_module, venv, appdir
):
    (appdir / "app" / "envapp.py").write_text(ENVAPP)
    live = appdir / "conf" / "environment"
    live.write_text("# Managed by Ansible\n" + format_environment({"SHOP_MODE": "prod"}))
    settings = {"workers": 2}
    run_module(main, args(venv, appdir, settings=settings))

    same = check_args(
        appdir, "envapp", environment_file=str(live), environment={"SHOP_MODE": "prod"}
    )
    result = run_module(main, args(venv, appdir, settings=settings, check=same))
    assert result["changed"] is False and "check_output" not in result, result

    other = check_args(
        appdir, "envapp", environment_file=str(live), environment={"SHOP_MODE": "qa"}
    )
    result = run_module(main, args(venv, appdir, settings=settings, check=other))
    assert result["failed"] is True
    assert "SHOP_MODE is ********" in result["msg"], "no_log masks the value in the message"


def test_the_role_template_writes_the_environment_as_the_check_does():
    env = {"B": 'a "quoted" $HOME `cmd` \\ end', "A": "plain", "C": 5}
    template = REPO / "roles" / "gunicorn" / "templates" / "environment.j2"
    jinja = jinja2.Environment(keep_trailing_newline=True)
    jinja.filters["comment"] = lambda text: f"# {text}"
    rendered = jinja.from_string(template.read_text()).render(
        ansible_managed="Managed by Ansible", __gunicorn_environment=env
    )
    assert environment_lines(rendered) == environment_lines(format_environment(env))
    assert environment_lines(rendered)[1] == 'B="a \\"quoted\\" \\$HOME \\`cmd\\` \\\\ end"'
