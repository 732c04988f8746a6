"""The hostlab command line: image, up, down, list, wheelhouse."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from hostlab import lab, paths
from hostlab.build import build_image


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hostlab",
        description="Throwaway Debian hosts with real systemd, booted by systemd-nspawn.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    image = sub.add_parser("image", help="build the cached Debian image of a suite")
    image.add_argument("--suite", choices=paths.SUITES, default="bookworm")
    image.add_argument("--force", action="store_true", help="rebuild even if cached")

    start = sub.add_parser("up", help="start N hosts and write an Ansible inventory")
    start.add_argument("count", type=int, metavar="N")
    start.add_argument("--suite", choices=paths.SUITES, default="bookworm")
    start.add_argument("--prefix", default="hl", help="hosts are named PREFIX1..N")
    start.add_argument("--inventory", type=Path, help="also write the inventory here")

    stop = sub.add_parser("down", help="power hosts off and remove every trace of them")
    which = stop.add_mutually_exclusive_group(required=True)
    which.add_argument("--prefix", help="remove hosts named PREFIX<number>")
    which.add_argument("--all", action="store_true", help="remove every hostlab host")

    sub.add_parser("list", help="print name, address, state and suite of each host")
    sub.add_parser("wheelhouse", help="build wheels for the hosts (see its own --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the hostlab command line and return its exit status."""
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["wheelhouse"]:
        # Imported only when asked for, so the rest works without that module.
        wheelhouse = importlib.import_module("hostlab.wheelhouse")
        return int(wheelhouse.main(args_in[1:]) or 0)
    args = _parser().parse_args(args_in)
    try:
        if args.command == "image":
            print(build_image(args.suite, force=args.force))
        elif args.command == "up":
            started = time.monotonic()
            hosts = lab.up(args.count, args.prefix, args.suite, args.inventory)
            for host in hosts:
                print(f"{host.name}\t{host.address}\trunning\t{host.suite}")
            inventory = args.inventory or paths.default_inventory()
            print(
                f"hostlab: {len(hosts)} up in {time.monotonic() - started:.1f} s; "
                f"inventory {inventory}"
            )
        elif args.command == "down":
            removed = lab.down(None if args.all else args.prefix)
            print(f"hostlab: removed {' '.join(removed) or 'nothing'}")
        elif args.command == "list":
            sys.stdout.write(lab.format_hosts(lab.list_hosts()))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"hostlab: {exc}", file=sys.stderr)
        return 1
    return 0
