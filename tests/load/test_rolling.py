"""A rolling deploy of three hosts behind HAProxy fails no request, at the balancer or at any
backend loaded directly (a balancer's retries could hide a backend's failures)."""

from __future__ import annotations

from benchmarks import rolling

from .conftest import TABLES


def test_rolling_deploy_fails_no_request_and_every_host_ends_on_the_new_version(hostlab):
    hosts = hostlab.up(3, prefix=rolling.PREFIX)
    rows, counters, ok = rolling.rolling(hosts, hostlab.inventory_path, clients=4)
    table = rolling.format_table([rolling.common.HEADER, *rows])
    TABLES.append(("rolling deploy behind HAProxy", f"{table}\n\n{counters}"))
    verdicts = {row[1]: row[-1] for row in rows}
    assert verdicts == {label: "ok" for label in ["balancer", *(h.name for h in hosts)]}, table
    assert ok, table
