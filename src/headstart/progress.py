"""Progress people can watch: tqdm's bar on a terminal, a plain dated line every so often in a log file.

tqdm alone either hides itself when stderr is not a terminal (`nohup headstart train ... > log`
would show nothing for hours) or fills the log with carriage returns. A run in the background
instead writes one readable line per `interval` seconds, which `tail -f` shows as it goes, also while
one slow item (a candidate, a batch) is still running: the elapsed time then moves on. A step shorter
than that writes none, and one that fails ends on its error line, not on a progress line.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


class LogLines(tqdm):
    """tqdm that writes whole lines without a bar ("train:  12% 1.23M/10.0M [10:50<1:17:14, 1.89ktok/s, loss=4.5]")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._shown: tuple | None = None  # (n, postfix) of the last line written
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        super().__init__(*args, **kwargs)
        if self.mininterval > 0:  # the thread holds a weak reference: a bar nobody closes still goes away
            threading.Thread(target=_heartbeat, args=(weakref.ref(self), self._stop), daemon=True).start()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if (self.n, self.postfix) != self._shown:
            self._write_line()
        return True

    def _write_line(self) -> None:
        with self._write_lock:
            line = self.format_meter(**(self.format_dict | {"ncols": 0}))
            self.fp.write(time.strftime("%H:%M:%S ") + line + "\n")
            self.fp.flush()
            self._shown = (self.n, self.postfix)
            self.last_print_t, self.last_print_n = self._time(), self.n  # the next update waits a whole interval

    def _next_line_in(self) -> float:
        """Seconds until a line is due even if nothing moved (<= 0: now)."""
        return max(self.last_print_t + self.mininterval, self.start_t + self.delay) - self._time()

    def close(self) -> None:
        """The last state, if any line was shown; no trailing blank line."""
        self._stop.set()
        if self.disable:
            return
        if self._shown is not None:
            self.display()
        self.disable = True
        self._decr_instances(self)

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is not None:
            self._shown = None  # the error explains where it stopped
        self.close()


def _heartbeat(ref: weakref.ref, stop: threading.Event) -> None:
    """A line at least every interval while the bar is open, also when one item takes longer than that."""
    while True:
        bar = ref()
        if bar is None or bar.disable:
            return
        wait = bar._next_line_in()
        if wait <= 0:
            bar._write_line()
            wait = bar.mininterval
        del bar
        if stop.wait(wait):
            return


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str, unit: str,
             active: bool = True, interval: float = LOG_INTERVAL_S, **kwargs: Any) -> tqdm:
    """A progress bar on stderr: tqdm's on a terminal, `LogLines` every `interval` seconds otherwise.

    `active=False` (e.g. on ranks other than 0, or when asked to be quiet) shows nothing, and so
    does a transient bar (`leave=False`, an inner loop) outside a terminal.
    """
    if not active or (not sys.stderr.isatty() and kwargs.get("leave") is False):
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)
    return LogLines(iterable, total=total, desc=desc, unit=unit, mininterval=interval, delay=interval, miniters=1,
                    file=sys.stderr, **kwargs)
