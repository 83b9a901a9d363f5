"""The one exception type that reaches the user as a single line and exit code 2, and the write failures
(a full disk, a read-only folder) that are turned into one."""

from __future__ import annotations

import errno
import os

# a write that fails for one of these reasons is the machine's state, not a bug: one line, not a traceback
WRITE_FAILURES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                  errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied"}


class UsageError(Exception):
    """Bad input from the user: the message names the problem and the fix, in one line.

    The CLI prints it without a traceback and exits with code 2. Library code raises it
    wherever the cause is something the user gave (a path, a file, a flag), never for bugs.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} — {fix}")
        self.problem = problem
        self.fix = fix


def write_failure(err: OSError, path: str | os.PathLike | None = None) -> UsageError | None:
    """The one-line error for a write that failed because of the disk (full, read-only, no permission),
    or None for any other failure. What was there before is kept by the atomic writers, so running the
    same command again once there is room resumes."""
    reason = WRITE_FAILURES.get(err.errno)
    if reason is None:
        return None
    where = path if path is not None else err.filename
    return UsageError(f"cannot write {where}: {reason}" if where else f"a write failed: {reason}",
                      "free some space (or choose a writable --out) and run the same command again; what was "
                      "written before is intact")
