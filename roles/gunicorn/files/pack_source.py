#!/usr/bin/env python3
"""Pack an app's source on the controller into a tarball whose name carries its release ID.

Usage: pack_source.py CACHE_DIR NAME dir PATH | git REPO REF | pip REQUIREMENT
Prints JSON: {"id": ..., "archive": ... or null}. The ID is derived from the content only, so
packing the same code twice gives the same ID, and deploying it again changes nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Drop owners and times, keep only the exec bit: the archive depends on content alone."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if info.isdir():
        info.mode = 0o755
    else:
        info.mode = 0o755 if info.mode & 0o100 else 0o644
    return info


def pack_dir(path: Path) -> bytes:
    """A deterministic tar of a directory tree."""
    if not path.is_dir():
        raise SystemExit(f"source.path {path} is not a directory on the controller")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                if name.endswith(SKIP_SUFFIXES):
                    continue
                full = Path(root) / name
                tar.add(
                    full, arcname=str(full.relative_to(path)), recursive=False, filter=_normalise
                )
    return buffer.getvalue()


def mirror(cache: Path, repo: str) -> str:
    """A local mirror of a remote REPO in CACHE, cloned or fetched for this run.

    Every host of a play packs its apps at once, so many of these run in parallel: a lock keeps
    one git at a time in the mirror, and a fetch finished after this call began serves it too,
    so a fleet fetches about once per run instead of once per host.
    """
    local = cache / "git" / hashlib.sha256(repo.encode()).hexdigest()[:16]
    local.parent.mkdir(parents=True, exist_ok=True)
    stamp = local.with_name(local.name + ".fetched")
    asked = time.time()
    with open(local.with_name(local.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if local.is_dir() and stamp.exists() and stamp.stat().st_mtime >= asked:
            return str(local)
        if local.is_dir():
            subprocess.run(
                ["git", "-C", str(local), "fetch", "--quiet", "--prune", "origin"], check=True
            )
        else:
            # Cloned aside and renamed: an interrupted clone leaves no half mirror behind.
            aside = Path(tempfile.mkdtemp(dir=local.parent, prefix=".clone-"))
            try:
                subprocess.run(
                    ["git", "clone", "--quiet", "--mirror", repo, str(aside / "m")], check=True
                )
                os.replace(aside / "m", local)
            finally:
                shutil.rmtree(aside, ignore_errors=True)
        stamp.touch()
    return str(local)


def pack_git(cache: Path, repo: str, ref: str) -> tuple[str, bytes]:
    """The tree of REF in REPO as a tar, and its tree hash; remote repos are mirrored in CACHE."""
    local = repo if Path(repo).is_dir() else mirror(cache, repo)
    tree = subprocess.run(
        ["git", "-C", local, "rev-parse", f"{ref}^{{tree}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    data = subprocess.run(
        ["git", "-C", local, "archive", "--format=tar", tree], check=True, capture_output=True
    ).stdout
    return tree, data


def main(argv: list[str]) -> int:
    """Pack the source and print its release ID and archive path as JSON."""
    cache, name, kind, *args = argv
    cache_dir = Path(cache).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    if kind == "pip":
        print(
            json.dumps({"id": hashlib.sha256(args[0].encode()).hexdigest()[:12], "archive": None})
        )
        return 0
    if kind == "dir":
        data = pack_dir(Path(args[0]).expanduser())
        release = hashlib.sha256(data).hexdigest()[:12]
    else:
        tree, data = pack_git(cache_dir, args[0], args[1])
        release = tree[:12]
    archive = cache_dir / f"{name}-{release}.tar"
    if not archive.exists():
        # Several hosts pack the same app at once: write aside, then rename atomically.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, archive)
    print(json.dumps({"id": release, "archive": str(archive)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
