"""A framework-free ASGI 3 app with the same endpoints as hello_wsgi.

Serve it with a Gunicorn ASGI worker, for example
``gunicorn -k uvicorn_worker.UvicornWorker hello_asgi:app`` or
``gunicorn --worker-class asgi hello_asgi:app``. It uses only the standard
library, so it needs nothing installed beyond the worker.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

VERSION = os.environ.get("APP_VERSION", "1")
MAX_SLEEP = 60.0


async def respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    """Send a complete HTTP response."""
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, payload: dict[str, Any], status: int = 200) -> None:
    """Send a JSON response."""
    await respond(send, status, json.dumps(payload).encode(), "application/json")


def sleep_seconds(query_string: bytes) -> float:
    """Read ``s`` from the query string: default 0.5, capped, 0.5 if not a number."""
    values = parse_qs(query_string.decode("latin-1")).get("s", ["0.5"])
    try:
        seconds = float(values[0])
    except ValueError:
        seconds = 0.5
    return min(max(seconds, 0.0), MAX_SLEEP)


async def lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown; there is nothing to open or close."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: Scope, send: Send) -> None:
    """Route one HTTP request."""
    path = scope["path"]
    if scope["method"] not in ("GET", "HEAD"):
        await respond(send, 405, b"method not allowed\n", "text/plain")
    elif path == "/":
        await respond_json(send, {"app": "hello_asgi", "version": VERSION, "pid": os.getpid()})
    elif path == "/healthz":
        await respond(send, 200, b"ok", "text/plain")
    elif path == "/sleep":
        seconds = sleep_seconds(scope.get("query_string", b""))
        await asyncio.sleep(seconds)
        await respond_json(send, {"slept": seconds, "version": VERSION, "pid": os.getpid()})
    elif path.startswith("/env/") and len(path) > len("/env/"):
        name = path[len("/env/") :]
        await respond_json(send, {"name": name, "set": name in os.environ})
    else:
        await respond(send, 404, b"not found\n", "text/plain")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "http":
        await http(scope, send)
