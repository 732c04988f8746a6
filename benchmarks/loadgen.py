"""A continuous HTTP/1.1 load generator that counts what a user would call a failure.

Several client threads per target send GET requests until the load is stopped or one of its two
bounds (seconds, requests) is reached; a load therefore always ends by itself. Half of the
clients open a new connection for every request, the other half keep their connection alive.

A request fails when the answer is not 2xx, when the connection is refused, reset or broken, or
when the answer takes longer than the timeout (30 s). Every request is kept as a sample, so a
caller can ask what answered in any window, e.g. which `version` values the app reported after
a deploy had finished.

Load is only ever sent to loopback addresses and to the test hosts of hostlab (10.213.K.2); any
other target is refused before a single packet leaves.

Usage: python -m benchmarks.loadgen http://127.0.0.1:8000/ --clients 8 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT = 30.0
# Hard ceilings, whatever a caller asks for: a load can never run away.
MAX_SECONDS = 3600.0
MAX_REQUESTS = 5_000_000
TEST_HOSTS = ipaddress.ip_network("10.213.0.0/16")


def check_address(address: str) -> str:
    """Return `address` if load may be sent to it, else raise ValueError.

    Allowed: 127.0.0.0/8, ::1, and hostlab's test hosts 10.213.K.2. Names other than
    `localhost` are refused rather than resolved, so DNS cannot redirect the load.
    """
    if address == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"Cannot load {address!r}: give an IP address, not a name") from None
    if ip.is_loopback and (ip.version == 6 or ip in ipaddress.ip_network("127.0.0.0/8")):
        return str(ip)
    if ip.version == 4 and ip in TEST_HOSTS and int(ip) & 0xFF == 2:
        return str(ip)
    raise ValueError(
        f"Cannot load {address}: only 127.0.0.0/8, ::1 and test hosts 10.213.K.2 are allowed"
    )


@dataclass(frozen=True)
class Target:
    """One URL under load, with the label it is reported under."""

    url: str
    label: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Cannot load {self.url!r}: only http://ADDRESS:PORT/path URLs")
        check_address(parts.hostname)
        if not self.label:
            object.__setattr__(self, "label", self.url)

    @property
    def address(self) -> str:
        """The checked IP address of the target."""
        return check_address(urlsplit(self.url).hostname or "")

    @property
    def port(self) -> int:
        """The TCP port, 80 when the URL names none."""
        return urlsplit(self.url).port or 80

    @property
    def path(self) -> str:
        """Path and query of the URL."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Sample:
    """One request: when it started (monotonic s), how long it took, how it failed, the version."""

    start: float
    latency: float
    mode: str
    failure: str | None
    version: str | None


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(fraction * len(ordered) + 0.999999))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Summary:
    """Counts and latencies of a set of samples."""

    requests: int
    failures: Counter[str]
    p50: float
    p99: float
    max: float
    versions: list[str]

    @property
    def failed(self) -> int:
        """The number of failed requests, of every kind."""
        return sum(self.failures.values())


def summarize(samples: list[Sample]) -> Summary:
    """Summarize samples; `versions` lists the distinct versions in order of first answer."""
    latencies = [s.latency for s in samples]
    versions: dict[str, None] = {}
    for sample in samples:
        if sample.version is not None:
            versions.setdefault(sample.version, None)
    return Summary(
        requests=len(samples),
        failures=Counter(s.failure for s in samples if s.failure),
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        max=max(latencies, default=0.0),
        versions=list(versions),
    )


@dataclass
class Result:
    """Every sample of a load, by target label; `started` and `ended` are monotonic times."""

    samples: dict[str, list[Sample]]
    started: float
    ended: float
    stopped_by: str

    def summary(
        self, label: str | None = None, since: float | None = None, until: float | None = None
    ) -> Summary:
        """Summarize one target (every target when None) for requests started in a window."""
        chosen = [
            s
            for name, samples in self.samples.items()
            if label is None or name == label
            for s in samples
            if (since is None or s.start >= since) and (until is None or s.start < until)
        ]
        return summarize(chosen)

    def last_version(self, label: str) -> str | None:
        """The version in the last successful answer of a target."""
        for sample in reversed(self.samples.get(label, [])):
            if sample.failure is None and sample.version is not None:
                return sample.version
        return None

    def table(self) -> str:
        """A text table: one row per target and connection mode, and a total per target."""
        rows = [
            ("target", "mode", "requests", "failures", "p50 ms", "p99 ms", "max ms", "versions")
        ]
        for label, samples in self.samples.items():
            for mode in ("keepalive", "close", None):
                chosen = [s for s in samples if mode is None or s.mode == mode]
                summary = summarize(chosen)
                rows.append(format_row(label, mode or "all", summary))
        return format_table(rows)


def format_failures(failures: Counter[str]) -> str:
    """`0`, or the total followed by the kinds, e.g. `3 (reset=2, http-502=1)`."""
    total = sum(failures.values())
    if not total:
        return "0"
    kinds = ", ".join(f"{kind}={n}" for kind, n in failures.most_common())
    return f"{total} ({kinds})"


def format_row(label: str, mode: str, summary: Summary) -> tuple[str, ...]:
    """One table row of a summary."""
    return (
        label,
        mode,
        str(summary.requests),
        format_failures(summary.failures),
        f"{summary.p50 * 1000:.1f}",
        f"{summary.p99 * 1000:.1f}",
        f"{summary.max * 1000:.1f}",
        ",".join(summary.versions) or "-",
    )


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Align rows of strings into columns; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def classify(exc: BaseException) -> str:
    """The failure kind of an exception raised while sending a request or reading its answer."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    broken = ConnectionResetError | BrokenPipeError | ConnectionAbortedError
    if isinstance(exc, broken | http.client.RemoteDisconnected | http.client.IncompleteRead):
        return "reset"
    if isinstance(exc, http.client.HTTPException):
        return "bad-answer"
    return "error"


def parse_version(body: bytes) -> str | None:
    """The `version` of a JSON object answer, as text; None when there is none."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and "version" in data:
        return str(data["version"])
    return None


class Load:
    """Continuous load on targets from client threads; use as a context manager.

    `clients` threads run per target, half with keep-alive connections. The load stops at
    `stop()`, after `max_seconds`, or after `max_requests` requests in all, whichever comes first.
    `pause` seconds pass between two requests of one client.
    """

    def __init__(
        self,
        targets: list[Target | str],
        clients: int = 8,
        max_seconds: float = 120.0,
        max_requests: int = 200_000,
        timeout: float = TIMEOUT,
        pause: float = 0.0,
    ) -> None:
        if clients < 1:
            raise ValueError("clients must be at least 1")
        self.targets = [t if isinstance(t, Target) else Target(t) for t in targets]
        labels = [t.label for t in self.targets]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Target labels must differ: {labels}")
        self.clients = clients
        self.max_seconds = min(max(max_seconds, 0.0), MAX_SECONDS)
        self.max_requests = min(max(max_requests, 0), MAX_REQUESTS)
        self.timeout = timeout
        self.pause = pause
        self._samples: dict[str, list[Sample]] = {t.label: [] for t in self.targets}
        self._lock = threading.Lock()
        self._sent = 0
        self._stop = threading.Event()
        self._stopped_by = ""
        self._threads: list[threading.Thread] = []
        self._result: Result | None = None
        self.started = 0.0

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the client threads."""
        self.started = time.monotonic()
        for target in self.targets:
            for index in range(self.clients):
                mode = "keepalive" if index % 2 == 0 else "close"
                thread = threading.Thread(
                    target=self._client, args=(target, mode), daemon=True, name=f"load-{mode}"
                )
                self._threads.append(thread)
                thread.start()

    def _finish(self, reason: str) -> None:
        with self._lock:
            if not self._stopped_by:
                self._stopped_by = reason
        self._stop.set()

    def _claim(self) -> bool:
        """Count one more request, or say no when a bound is reached."""
        if self._stop.is_set():
            return False
        if time.monotonic() - self.started >= self.max_seconds:
            self._finish("max_seconds")
            return False
        with self._lock:
            if self._sent >= self.max_requests:
                claimed = False
            else:
                self._sent += 1
                claimed = True
        if not claimed:
            self._finish("max_requests")
        return claimed

    def _client(self, target: Target, mode: str) -> None:
        conn: http.client.HTTPConnection | None = None
        headers = {"Connection": "close"} if mode == "close" else {}
        while self._claim():
            if conn is None:
                conn = http.client.HTTPConnection(target.address, target.port, timeout=self.timeout)
            start = time.monotonic()
            failure: str | None = None
            version: str | None = None
            try:
                conn.request("GET", target.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if not 200 <= response.status < 300:
                    failure = f"http-{response.status}"
                version = parse_version(body)
                if mode == "close" or response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                failure = classify(exc)
                conn.close()
                conn = None
            latency = time.monotonic() - start
            if failure is None and latency > self.timeout:
                failure = "timeout"
            sample = Sample(start - self.started, latency, mode, failure, version)
            with self._lock:
                self._samples[target.label].append(sample)
            if self.pause:
                self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def elapsed(self) -> float:
        """Seconds since the load started, on the clock of the samples' `start`."""
        return time.monotonic() - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the load stops by itself; True when it has."""
        return self._stop.wait(timeout)

    def snapshot(self) -> Result:
        """The samples so far, while the load goes on."""
        with self._lock:
            copy = {label: list(samples) for label, samples in self._samples.items()}
        return Result(copy, 0.0, self.elapsed(), self._stopped_by or "running")

    def stop(self) -> Result:
        """Stop the clients, wait for requests in flight, and return the result."""
        if self._result is not None:
            return self._result
        self._finish("stop")
        for thread in self._threads:
            thread.join(self.timeout + 5)
        with self._lock:
            self._result = Result(self._samples, 0.0, self.elapsed(), self._stopped_by)
        return self._result


def main(argv: list[str] | None = None) -> int:
    """Run a load from the command line, print its table; exit 1 when any request failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("urls", nargs="+", metavar="URL", help="http://ADDRESS:PORT/path")
    parser.add_argument("--clients", type=int, default=8, help="client threads per target")
    parser.add_argument("--seconds", type=float, default=10.0, help="stop after this long")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between requests")
    args = parser.parse_args(argv)
    try:
        targets = [Target(url) for url in args.urls]
    except ValueError as exc:
        parser.error(str(exc))
    load = Load(targets, args.clients, args.seconds, args.max_requests, pause=args.pause)
    with load, contextlib.suppress(KeyboardInterrupt):
        load.wait(load.max_seconds + 1)
    result = load.stop()
    print(result.table())
    print(f"stopped by {result.stopped_by} after {result.ended:.1f} s")
    return 1 if result.summary().failed else 0


if __name__ == "__main__":
    sys.exit(main())
