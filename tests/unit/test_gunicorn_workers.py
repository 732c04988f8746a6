"""The worker sizing filter at its edges."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pyserve.gunicorn.plugins.filter.gunicorn_workers import gunicorn_workers


def test_one_vcpu_with_512_mib_gets_one_worker_limited_by_memory():
    assert gunicorn_workers(1, memory_mb=512) == {
        "workers": 1,
        "threads": 1,
        "limited_by": "memory",
    }


def test_one_vcpu_without_memory_cap_gets_three_sync_workers():
    assert gunicorn_workers(1) == {"workers": 3, "threads": 1, "limited_by": "cpu"}


def test_64_vcpus_with_8_gib_are_limited_by_memory():
    # (8192 - 512) / 128 = 60, below 2 * 64 + 1 = 129
    assert gunicorn_workers(64, memory_mb=8192) == {
        "workers": 60,
        "threads": 1,
        "limited_by": "memory",
    }


def test_several_apps_share_the_cpu_term():
    assert gunicorn_workers(4, apps=3)["workers"] == 3  # 9 // 3
    assert gunicorn_workers(1, apps=8)["workers"] == 1


def test_several_apps_share_the_memory():
    result = gunicorn_workers(8, memory_mb=4096, worker_memory_mb=256, apps=2)
    assert result == {"workers": 7, "threads": 1, "limited_by": "memory"}  # 3584 / 256 / 2


def test_gthread_uses_fewer_processes_with_threads():
    assert gunicorn_workers(4, worker_class="gthread") == {
        "workers": 5,
        "threads": 4,
        "limited_by": "cpu",
    }


@pytest.mark.parametrize("cls", ["gevent", "uvicorn.workers.UvicornWorker", "asgi"])
def test_async_classes_get_one_process_per_vcpu(cls):
    assert gunicorn_workers(4, worker_class=cls)["workers"] == 4


@pytest.mark.parametrize(
    "kwargs",
    [{"vcpus": 0}, {"vcpus": "two"}, {"vcpus": 2, "worker_class": "fast"}, {"vcpus": 2, "apps": 0}],
)
def test_bad_input_raises_filter_error(kwargs):
    with pytest.raises(AnsibleFilterError):
        gunicorn_workers(**kwargs)
