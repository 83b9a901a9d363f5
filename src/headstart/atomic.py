"""Atomic writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it becomes `path` only if the block succeeds.

    An existing `path` is replaced (when `overwrite`) only after the new one is complete, so
    a crash leaves either the old folder or nothing, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        _move_into_place(tmp, path, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, path: Path, overwrite: bool = True) -> None:
    """Rename the finished folder `tmp` to `path`, replacing an old one only once the new one is whole."""
    if path.exists():
        if not overwrite:
            raise FileExistsError(path)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def resumable_dir(path: str | os.PathLike, identity: dict[str, Any]) -> Iterator[Path]:
    """Like `atomic_dir`, but the work folder `.NAME.partial` outlives a crash.

    Run again with the same `identity` (what the work depends on), the block finds there what
    it had finished; with another identity the old work is thrown away. Readers of `path` still
    see the old folder or the whole new one.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    key = partial / "identity.json"
    stamp = json.loads(json.dumps(identity))  # as it reads back from disk
    try:
        same = json.loads(key.read_text()) == stamp
    except (OSError, json.JSONDecodeError):
        same = False
    if not same:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write_json_atomic(key, stamp)
    yield partial
    key.unlink()
    _move_into_place(partial, path)
