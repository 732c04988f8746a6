"""Build the offline wheelhouse the test hosts install from.

The test hosts have no compiler and no route to the package index, so the
controller downloads binary wheels once, for every target Python, into one
folder. The hosts then run ``pip install --no-index --find-links``.

Run it with ``python -m hostlab.wheelhouse`` (or ``python -m hostlab wheelhouse``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / ".cache" / "wheelhouse"
DEFAULT_REQUIREMENTS = Path(__file__).resolve().with_name("wheelhouse.txt")
# Debian bookworm ships Python 3.11, trixie ships 3.13.
DEFAULT_PYTHONS = ("3.11", "3.13")
STAMP_NAME = ".wheelhouse-stamp.json"

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


@dataclass(frozen=True)
class Requirement:
    """One line of the requirements list."""

    line: str
    name: str
    specifier: str


def canonical_name(name: str) -> str:
    """Return the normalised form of a distribution name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text: str) -> list[Requirement]:
    """Parse requirement lines, ignoring blank lines and comments."""
    requirements = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _NAME_RE.match(line)
        if match is None:
            raise ValueError(f"Cannot parse requirement {line!r}")
        requirements.append(
            Requirement(line, canonical_name(match.group(1)), match.group(3).replace(" ", ""))
        )
    return requirements


def split_batches(requirements: Sequence[Requirement]) -> list[list[Requirement]]:
    """Group requirements into resolves pip can do in one call each.

    pip refuses two versions of one name in one resolve. The first pin of each
    name goes into the main batch (with any line that repeats that pin, such
    as the same pin with extras); every other pin gets a batch of its own.
    """
    main: list[Requirement] = []
    extra: list[list[Requirement]] = []
    first_pin: dict[str, str] = {}
    for req in requirements:
        pin = first_pin.setdefault(req.name, req.specifier)
        if pin == req.specifier:
            main.append(req)
        else:
            extra.append([req])
    return [main, *extra] if main else extra


def platform_tags(arch: str) -> list[str]:
    """Return the manylinux platform tags accepted for a machine architecture."""
    return [f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]


def stamp_key(requirements_text: str, pythons: Sequence[str], arch: str) -> str:
    """Hash what decides the wheelhouse's content: the list and the targets."""
    lines = [r.line for r in parse_requirements(requirements_text)]
    payload = json.dumps({"requirements": lines, "pythons": sorted(pythons), "arch": arch})
    return hashlib.sha256(payload.encode()).hexdigest()


def is_up_to_date(dest: Path, key: str) -> bool:
    """Say whether the stamp in dest matches key and every wheel it lists exists."""
    try:
        stamp = json.loads((dest / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("key") != key:
        return False
    return all((dest / name).is_file() for name in stamp.get("wheels", []))


def pip_download_command(
    requirements: Sequence[Requirement],
    python: str,
    arch: str,
    dest: Path,
    constraints: Path | None,
) -> list[str]:
    """Build the pip command that fetches binary wheels for one Python."""
    abi = "cp" + python.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    command += ["--only-binary=:all:", "--python-version", python]
    command += ["--implementation", "cp", "--abi", abi]
    for tag in platform_tags(arch):
        command += ["--platform", tag]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    command += [req.line for req in requirements]
    return command


def download(
    requirements: Sequence[Requirement], pythons: Sequence[str], arch: str, dest: Path
) -> None:
    """Fetch every batch of requirements for every Python into dest.

    Batches after the first resolve under the first batch's pins as
    constraints, so their dependencies do not drift to newer releases.
    """
    batches = split_batches(requirements)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for index, batch in enumerate(batches):
            constraints = None
            if index > 0:
                names = {req.name for req in batch}
                pins = [r.name + r.specifier for r in batches[0] if r.name not in names]
                constraints = Path(tmp) / f"constraints-{index}.txt"
                constraints.write_text("\n".join(pins) + "\n")
            for python in pythons:
                command = pip_download_command(batch, python, arch, dest, constraints)
                print(
                    f"Fetching for Python {python}: {' '.join(r.line for r in batch)}", flush=True
                )
                subprocess.run(command, check=True)


def wheel_files(dest: Path) -> list[str]:
    """List the wheel file names in dest."""
    return sorted(path.name for path in dest.glob("*.whl"))


def summary(wheels: Sequence[str]) -> str:
    """Render a table of package, versions and Python tags from wheel names."""
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for wheel in wheels:
        parts = wheel[: -len(".whl")].split("-")
        name, version, python_tag = canonical_name(parts[0]), parts[1], parts[-3]
        versions, tags = rows.setdefault(name, (set(), set()))
        versions.add(version)
        tags.update(python_tag.split("."))
    table = [("package", "versions", "python tags")]
    for name in sorted(rows):
        versions, tags = rows[name]
        table.append((name, ", ".join(sorted(versions)), ", ".join(sorted(tags))))
    widths = [max(len(row[col]) for row in table) for col in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m hostlab wheelhouse",
        description="Download the binary wheels the offline test hosts install from.",
    )
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help="wheelhouse folder (default: %(default)s)"
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=DEFAULT_REQUIREMENTS,
        help="pinned list of what to fetch (default: hostlab/wheelhouse.txt)",
    )
    parser.add_argument(
        "--python",
        action="append",
        dest="pythons",
        metavar="X.Y",
        help="target Python version, repeatable (default: 3.11 and 3.13)",
    )
    parser.add_argument(
        "--arch", default=platform.machine(), help="machine architecture (default: %(default)s)"
    )
    parser.add_argument(
        "--force", action="store_true", help="run pip even when the stamp says up to date"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build or refresh the wheelhouse; return a process exit code."""
    args = parse_args(argv)
    pythons = args.pythons or list(DEFAULT_PYTHONS)
    dest: Path = args.dest
    try:
        text = args.requirements.read_text()
        requirements = parse_requirements(text)
    except (OSError, ValueError) as exc:
        print(f"Cannot read {args.requirements}: {exc}", file=sys.stderr)
        return 2
    key = stamp_key(text, pythons, args.arch)
    if not args.force and is_up_to_date(dest, key):
        print(f"Wheelhouse {dest} is up to date; nothing downloaded.")
    else:
        (dest / STAMP_NAME).unlink(missing_ok=True)
        try:
            download(requirements, pythons, args.arch, dest)
        except subprocess.CalledProcessError as exc:
            print(f"Cannot fetch wheels: pip exited with {exc.returncode}", file=sys.stderr)
            return 1
        stamp = {"key": key, "pythons": pythons, "arch": args.arch, "wheels": wheel_files(dest)}
        (dest / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
        print(f"Wheelhouse {dest} built for Python {', '.join(pythons)} on {args.arch}.")
    print(summary(wheel_files(dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
