# Copyright (c) pyserve maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Size Gunicorn's worker pool from vCPUs and memory. Documented in gunicorn_workers.yml."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

# The gthread pool: fewer processes, each serving this many threads.
GTHREAD_THREADS = 4
# Typical resident memory of one worker process, MiB, when the caller gives none.
DEFAULT_WORKER_MEMORY_MB = {"sync": 128, "gthread": 160, "async": 192}
_ASYNC_HINTS = ("gevent", "eventlet", "tornado", "uvicorn", "asgi")


def _kind(worker_class: str) -> str:
    """Return 'sync', 'gthread' or 'async' for a Gunicorn worker_class value."""
    name = worker_class.strip()
    lowered = name.lower()
    if lowered in ("sync", "gunicorn.workers.sync.syncworker"):
        return "sync"
    if lowered in ("gthread", "gunicorn.workers.gthread.threadworker"):
        return "gthread"
    if any(hint in lowered for hint in _ASYNC_HINTS):
        return "async"
    if "." in name:
        return "sync"  # a custom class: assume one request per process
    raise ValueError(f"unknown worker_class {worker_class!r}")


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = int(float(value))
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return number


def gunicorn_workers(
    vcpus: Any,
    memory_mb: Any = None,
    reserved_mb: Any = 512,
    worker_memory_mb: Any = None,
    worker_class: str = "sync",
    apps: Any = 1,
) -> dict[str, Any]:
    """Return ``{"workers", "threads", "limited_by"}`` for one app on a host."""
    try:
        cpus = _count("vcpus", vcpus, 1)
        napps = _count("apps", apps, 1)
        kind = _kind(str(worker_class))
        if kind == "sync":
            cpu_term, threads = 2 * cpus + 1, 1
        elif kind == "gthread":
            cpu_term, threads = cpus + 1, GTHREAD_THREADS
        else:
            cpu_term, threads = cpus, 1
        by_cpu = max(1, cpu_term // napps)
        if memory_mb is None:
            return {"workers": by_cpu, "threads": threads, "limited_by": "cpu"}
        memory = _count("memory_mb", memory_mb, 0)
        reserved = _count("reserved_mb", reserved_mb, 0)
        per_worker = (
            DEFAULT_WORKER_MEMORY_MB[kind]
            if worker_memory_mb is None
            else _count("worker_memory_mb", worker_memory_mb, 1)
        )
        by_memory = max(0, memory - reserved) // per_worker // napps
        if by_memory < by_cpu:
            return {"workers": max(1, by_memory), "threads": threads, "limited_by": "memory"}
        return {"workers": by_cpu, "threads": threads, "limited_by": "cpu"}
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"gunicorn_workers: {exc}", orig_exc=exc) from exc


class FilterModule:
    """Gunicorn sizing filters."""

    def filters(self) -> dict[str, Any]:
        """Return the filters of this file."""
        return {"gunicorn_workers": gunicorn_workers}
