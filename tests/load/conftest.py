"""The load proofs: the benchmark scenarios of benchmarks/, run as tests on real test hosts.

Each scenario keeps its table; the tables are printed at the end of the session, whether the
tests passed or not, so a CI log always shows what the clients saw.
"""

from __future__ import annotations

TABLES: list[tuple[str, str]] = []


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the table of every scenario that ran."""
    for title, table in TABLES:
        terminalreporter.section(title)
        terminalreporter.write_line(table)
