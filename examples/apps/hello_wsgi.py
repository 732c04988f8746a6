"""A small Flask app for deploy tests and the README demo.

Serve it with ``gunicorn hello_wsgi:app`` from this folder. ``APP_VERSION``
tells deploys apart; ``/sleep`` keeps a request in flight during restarts.
"""

from __future__ import annotations

import os
import time
from importlib import metadata

from flask import Flask, Response, jsonify, request

VERSION = os.environ.get("APP_VERSION", "1")
# Read when the worker imports the app: a deploy that changes only dependencies shows here.
WERKZEUG = metadata.version("werkzeug")
MAX_SLEEP = 60.0

app = Flask(__name__)


@app.get("/")
def index() -> Response:
    """Say which app, version, worker process and server stack answered."""
    stack = {"server": request.environ.get("SERVER_SOFTWARE", ""), "werkzeug": WERKZEUG}
    return jsonify(app="hello_wsgi", version=VERSION, pid=os.getpid(), stack=stack)


@app.get("/healthz")
def healthz() -> tuple[str, int, dict[str, str]]:
    """Answer 200 ok while the app is up."""
    return "ok", 200, {"Content-Type": "text/plain"}


@app.get("/sleep")
def sleep() -> Response:
    """Sleep for ``s`` seconds (default 0.5, capped), then answer."""
    seconds = min(max(request.args.get("s", 0.5, type=float), 0.0), MAX_SLEEP)
    time.sleep(seconds)
    return jsonify(slept=seconds, version=VERSION, pid=os.getpid())


@app.get("/env/<name>")
def env(name: str) -> Response:
    """Say whether an environment variable is set, never its value."""
    return jsonify(name=name, set=name in os.environ)
