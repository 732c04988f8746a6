"""The load tool against a real HTTP server on 127.0.0.1: what it counts and what it refuses."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.loadgen import Load, Target, check_address, main


class App(BaseHTTPRequestHandler):
    """Answers by path: / with JSON carrying the server's version, /fail with 500, /reset with
    a TCP reset, /slow after a long sleep."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(1.0)
        status = 500 if self.path == "/fail" else 200
        body = json.dumps({"version": self.server.version}).encode()  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), App)
    httpd.daemon_threads = True
    httpd.version = "1"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_counts_every_request_up_to_the_request_bound(server):
    with Load([url(server)], clients=4, max_seconds=60, max_requests=300) as load:
        assert load.wait(30), "the load must stop by itself at max_requests"
    result = load.stop()
    summary = result.summary()
    assert result.stopped_by == "max_requests"
    assert summary.requests == 300
    assert summary.failed == 0
    assert summary.versions == ["1"]
    assert 0 < summary.p50 <= summary.p99 <= summary.max


def test_half_of_the_clients_keep_their_connection_alive(server):
    with Load([url(server)], clients=4, max_requests=200) as load:
        load.wait(30)
    modes = {s.mode for s in load.stop().samples[url(server)]}
    assert modes == {"keepalive", "close"}


def test_stops_by_itself_at_the_time_bound(server):
    load = Load([url(server)], clients=2, max_seconds=0.5, max_requests=10**9, pause=0.01)
    with load:
        assert load.wait(30), "the load must stop by itself at max_seconds"
    assert load.stop().stopped_by == "max_seconds"


@pytest.mark.parametrize(("path", "kind"), [("/fail", "http-500"), ("/reset", "reset")])
def test_counts_500_answers_and_resets_as_failures(server, path, kind):
    with Load([url(server, path)], clients=2, max_requests=20) as load:
        load.wait(30)
    summary = load.stop().summary()
    assert summary.requests == 20
    assert summary.failures == {kind: 20}


def test_counts_refused_connections_as_failures():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    with Load([f"http://127.0.0.1:{port}/"], clients=2, max_requests=10) as load:
        load.wait(30)
    assert load.stop().summary().failures == {"refused": 10}


def test_counts_answers_slower_than_the_timeout_as_failures(server):
    with Load([url(server, "/slow")], clients=2, max_requests=4, timeout=0.3) as load:
        load.wait(30)
    summary = load.stop().summary()
    assert summary.failures == {"timeout": 4}


def test_tells_old_from_new_versions_over_time(server):
    with Load([Target(url(server), "app")], clients=2, pause=0.01) as load:
        while not load.snapshot().summary("app").requests:
            time.sleep(0.05)
        server.version = "2"
        switched = load.elapsed()
        while not load.snapshot().summary("app", since=switched + 0.2).requests:
            time.sleep(0.05)
    result = load.stop()
    assert result.summary("app").versions == ["1", "2"]
    assert result.summary("app", since=switched + 0.2).versions == ["2"]
    assert result.last_version("app") == "2"


def test_keeps_targets_apart_by_label(server):
    targets = [Target(url(server), "good"), Target(url(server, "/fail"), "bad")]
    with Load(targets, clients=2, max_requests=100) as load:
        load.wait(30)
    result = load.stop()
    assert result.summary("good").failed == 0
    assert result.summary("bad").failed == result.summary("bad").requests > 0


@pytest.mark.parametrize("address", ["192.168.1.1", "8.8.8.8", "10.213.4.3", "10.0.0.2", "::2"])
def test_refuses_addresses_outside_loopback_and_the_test_hosts(address):
    with pytest.raises(ValueError, match=r"only 127\.0\.0\.0/8"):
        check_address(address)


@pytest.mark.parametrize("target", ["http://example.org/", "https://127.0.0.1/", "ftp://[::1]/"])
def test_refuses_names_and_other_schemes(target):
    with pytest.raises(ValueError, match="Cannot load"):
        Target(target)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.3.2.1", "::1", "10.213.7.2", "localhost"])
def test_accepts_loopback_and_the_test_hosts(address):
    assert check_address(address)


def test_the_command_line_refuses_a_public_address(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["http://8.8.8.8/", "--seconds", "1"])
    assert exit_info.value.code == 2
    assert "only 127.0.0.0/8" in capsys.readouterr().err


def test_the_command_line_prints_a_table_and_fails_on_failures(server, capsys):
    assert main([url(server, "/fail"), "--clients", "2", "--max-requests", "10"]) == 1
    out = capsys.readouterr().out
    assert "10 (http-500=10)" in out
    assert main([url(server), "--clients", "2", "--max-requests", "10"]) == 0
