"""Zero downtime on one host: no event of the deploy_events benchmark fails a single request.

The events run in order on one host, each starting from the state the one before left. The
controller loads nginx in front of a Unix-socket app and a TCP app directly, with new and
keep-alive connections; see benchmarks/deploy_events.py for each event.
"""

from __future__ import annotations

import pytest

from benchmarks import deploy_events

from .conftest import TABLES

EVENTS = [deploy_events.EVENTS[n] for n in sorted(deploy_events.EVENTS)]


@pytest.fixture(scope="module")
def bench(hostlab):
    (host,) = hostlab.up(1, prefix=deploy_events.PREFIX)
    bench = deploy_events.Bench(host, hostlab.inventory_path, clients=4)
    bench.setup()
    yield bench
    TABLES.append(("deploy events under load, one host", bench.table()))


@pytest.mark.parametrize("event", EVENTS, ids=[f"{e.number}-{e.name}" for e in EVENTS])
def test_event_fails_no_request_and_the_right_version_answers_after(bench, event):
    problems = bench.run_event(event)
    assert problems == [], "\n" + bench.table()
