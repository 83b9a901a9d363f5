"""Where fetched assets live, and the `asset.json` marker that says one is complete.

An asset is a folder `<cache>/<kind>/<name>/`. It counts as present only when its marker
exists; the marker is written last, inside a temporary folder that is renamed into place,
so a crash never leaves a folder that looks finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headstart import __version__
from headstart.atomic import atomic_dir, nearest_existing
from headstart.errors import UsageError

CACHE_ENV = "HEADSTART_CACHE"
MARKER = "asset.json"


def cache_dir() -> Path:
    """The cache root: `$HEADSTART_CACHE` if set, else `~/.cache/headstart`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headstart"


def check_cache_dir(cache: Path) -> None:
    """Refuse, before any download, a cache that is a file or lies inside one."""
    existing = nearest_existing(cache)
    if not existing.is_dir():
        raise UsageError(f"cache {cache} is a file or lies inside one ({existing})",
                         f"give --cache (or ${CACHE_ENV}) a folder path")


def asset_dir(kind: str, name: str, cache: Path | None = None) -> Path:
    """The folder of one asset, e.g. `asset_dir("models", "smollm2-135m")`; it may not exist yet."""
    return (cache or cache_dir()) / kind / name


def downloads_dir(cache: Path | None = None) -> Path:
    """Registry downloads are kept here so that a rebuild does not fetch them again."""
    return (cache or cache_dir()) / "downloads"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a finished asset folder, or None when the folder is absent or unfinished."""
    try:
        return json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        return None


def require_asset(kind: str, name: str, cache: Path | None = None) -> Path:
    """The folder of a finished asset; a UsageError tells the user how to fetch a missing one."""
    folder = asset_dir(kind, name, cache)
    if read_marker(folder) is None:
        raise UsageError(f"asset {kind}/{name} is not fetched (no {folder / MARKER})", "run `headstart assets`")
    return folder


def say(message: str) -> None:
    """One progress line on stderr, so that `--json` output on stdout stays machine-readable."""
    print(f"headstart assets: {message}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tree_stats(folder: Path) -> dict[str, Any]:
    """File count, total bytes and one SHA-256 over all files (relative path and content hash).

    Two builds with the same `sha256` hold exactly the same files, which is what a data
    manifest downstream needs to check.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "sha256": digest.hexdigest()}


Builder = Callable[[Path, Path], dict[str, Any]]
"""Writes an asset into an empty folder (first argument), keeping registry downloads in the
second, and returns what the marker should record about its source."""


def ensure_asset(kind: str, name: str, build: Builder, cache: Path) -> dict[str, Any]:
    """Build the asset unless its marker exists; return the marker plus `status` and `path`."""
    folder = asset_dir(kind, name, cache)
    marker = read_marker(folder)
    if marker is not None:
        return {**marker, "status": "present", "path": str(folder)}
    say(f"{kind}/{name}: building")
    start = time.perf_counter()
    with atomic_dir(folder) as tmp:
        info = build(tmp, downloads_dir(cache))
        marker = {
            "asset": f"{kind}/{name}",
            "built_by": f"headstart {__version__}",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **info,
            **tree_stats(tmp),
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    say(f"{kind}/{name}: done, {marker['files']} files, {marker['bytes'] / 1e6:.1f} MB "
        f"in {marker['build_seconds']} s")
    return {**marker, "status": "fetched", "path": str(folder)}
