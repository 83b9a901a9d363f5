"""Atomic writes (a reader sees the old file or the whole new one, never half of it), and the checks
that an output path may be written before any work starts.

Files are written with the user's umask, like any saved file (0644 for the usual umask of 022):
`tempfile` makes its files private (0600), which a model folder others should read must not be.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from headstart.errors import UsageError, write_failure

FULL_BELOW = 1 << 20  # bytes free under which a failed write is taken for a full disk


def _disk_full(folder: Path) -> bool:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize < FULL_BELOW


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def disk_failures(path: str | os.PathLike) -> Iterator[None]:
    """A write to `path` that failed because of the disk (full, read-only, no permission) becomes the one-line
    error; what was there before is for the caller to keep."""
    path = Path(path)
    try:
        yield
    except OSError as err:
        raise (write_failure(err, path) or err) from None
    except RuntimeError:  # torch.save reports a full disk as "unexpected pos"; tell it apart by the free space
        if _disk_full(path.parent):
            raise write_failure(OSError(errno.ENOSPC, "No space left on device"), path) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with disk_failures(path):
            yield tmp_path
            tmp_path.chmod(0o666 & ~_umask())  # after the block: writers such as safetensors' replace the file
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
    try:
        yield tmp
        _move_into_place(tmp, path, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _ordinary_modes(folder: Path) -> None:
    """The modes of the user's umask for the folder and all in it: mkdtemp and the temporary files of
    writers such as safetensors' make them private (0700, 0600)."""
    mask = _umask()
    folder.chmod(0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            Path(root, name).chmod(0o777 & ~mask)
        for name in files:
            Path(root, name).chmod(0o666 & ~mask)


def _move_into_place(tmp: Path, path: Path, overwrite: bool = True) -> None:
    """Rename the finished folder `tmp` to `path`, replacing an old one only once the new one is whole."""
    _ordinary_modes(tmp)
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


def nearest_existing(path: str | os.PathLike) -> Path:
    """`path` itself if it exists, else its nearest ancestor that does: what a new folder there would be made in."""
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    return existing


def check_out_writable(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be written: a regular file, a path inside one,
    or a place without write permission (a read-only mount, /proc). Nothing is created."""
    path = Path(path).absolute()
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise UsageError(f"{flag} {path} is the current folder or holds it", f"give {flag} a folder below it")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder", f"give {flag} a folder path; a file is never "
                         "replaced")
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise UsageError(f"{flag} {path} lies inside {existing}, which is a file", f"give {flag} a path under a folder")
    try:  # a real write says more than os.access: read-only mounts, /proc and ACLs all answer it
        fd, probe = tempfile.mkstemp(prefix=".headstart-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"{flag} {path} cannot be written ({err.strerror} in {existing})",
                         f"give {flag} a folder you can write to") from None
    return path


def check_out_replaceable(path: str | os.PathLike, what: str, ours: Callable[[Path], bool],
                          overwrite: bool | None = None, flag: str = "--out") -> Path:
    """`check_out_writable`, and refuse a non-empty folder that is not this command's own earlier output
    (`ours`) unless `overwrite` (None: the command has no --overwrite flag; the fix says to remove it)."""
    path = check_out_writable(path, flag)
    if path.is_dir() and any(path.iterdir()) and not ours(path) and not overwrite:
        how = "pass --overwrite to replace it" if overwrite is not None else "remove it first"
        raise UsageError(f"{flag} {path} exists and is not a {what}", f"choose a new {flag}, or {how}")
    return path
