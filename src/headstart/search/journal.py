"""The append-only record of every evaluated candidate; it is also how a killed search resumes.

A search is deterministic given its seed and the results of its evaluations. So resuming is
replaying: the search runs again from the start, and every candidate already in the journal
takes its recorded result instead of being evaluated. The replay follows the same path as the
first run, and continues from where that one stopped, with no candidate evaluated twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from headstart.atomic import write_text_atomic
from headstart.errors import UsageError, write_failure
from headstart.subnet import SubnetSpec


def spec_key(spec: SubnetSpec) -> str:
    """A stable identity for a spec (the same across processes and runs)."""
    data = [list(spec.embd), [[s.layer, list(s.heads), list(s.kv), list(s.mlp)] for s in spec.layers]]
    return hashlib.sha1(json.dumps(data, separators=(",", ":")).encode()).hexdigest()[:16]


JOURNAL = "journal.jsonl"  # its name in a search folder
# Where the inputs were, not what they were (their weights and data identity are in the header too):
# a search moved to another folder or machine, or run from another checkout, still resumes.
LOCATIONS = ("teacher", "data", "importance")


def _identity(header: dict[str, Any]) -> dict[str, Any]:
    """A header without its inputs' locations, but with how the search was seeded: not, by its own scores (auto),
    or by an importance file."""
    importance = header.get("importance")
    seeded = None if importance is None else "auto" if importance == "auto" else "file"
    return {k: v for k, v in header.items() if k not in LOCATIONS} | {"seeded": seeded}


def differences(a: dict[str, Any] | None, b: dict[str, Any]) -> list[str]:
    """The header fields that make two journal headers different searches: none for one search, wherever its
    inputs lie; an unreadable header differs as a whole."""
    if a is None:
        return ["header"]
    old, new = _identity(a), _identity(b)
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The header a journal was started with (teacher, its weights, data, settings), or None if there is none."""
    try:
        with Path(path).open() as f:
            header = json.loads(f.readline())["header"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return header if isinstance(header, dict) else None


class Journal:
    """journal.jsonl in a search folder: one JSON object per evaluated candidate, flushed as written."""

    def __init__(self, path: str | Path, header: dict[str, Any], writer: bool = True) -> None:
        """`writer`: this process owns the file (rank 0); other ranks only read what it wrote before."""
        self.path = Path(path)
        self.writer = writer
        self.records: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        if self.path.exists():
            self._load(header)
        elif writer:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"header": header})

    def _load(self, header: dict[str, Any]) -> None:
        lines = self.path.read_text().splitlines()
        differ = differences(read_header(self.path), header)
        if differ:
            raise UsageError(f"{self.path} belongs to a different search (its {', '.join(differ)} differ)",
                             "use a new --out folder, or the same settings to resume")
        good = 1
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: drop it, it is re-evaluated
                break
            self.records[record["key"]] = record
            self.order.append(record["key"])
            good += 1
        if good < len(lines) and self.writer:
            write_text_atomic(self.path, "".join(line + "\n" for line in lines[:good]))

    def _append(self, obj: dict[str, Any]) -> None:
        """One line, synced; a write that fails (a full disk) leaves the lines before it as they were."""
        with self.path.open("ab", buffering=0) as f:  # unbuffered: nothing is left to flush after a failure
            end = f.seek(0, os.SEEK_END)
            try:
                data = memoryview((json.dumps(obj) + "\n").encode())
                while data:
                    data = data[f.write(data):]
                os.fsync(f.fileno())
            except OSError as err:
                with contextlib.suppress(OSError):
                    f.truncate(end)
                raise (write_failure(err, self.path) or err) from None

    def add(self, record: dict[str, Any]) -> None:
        self._append(record)
        self.records[record["key"]] = record
        self.order.append(record["key"])

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.records[key]

    def __len__(self) -> int:
        return len(self.order)
