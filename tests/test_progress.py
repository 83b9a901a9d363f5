"""Progress outside a terminal: whole dated lines a log file can show, and nothing from quiet bars."""

from __future__ import annotations

import re
import time

import pytest

from headstart.progress import progress_bar


def test_a_log_gets_whole_lines_ending_with_the_final_state(capsys):
    bar = progress_bar(total=1000, desc="train", unit="tok", unit_scale=True, interval=0.0)
    for i in range(4):
        bar.set_postfix(loss=f"{5 - i:.1f}", refresh=False)
        bar.update(250)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d train: +\d+%", line) for line in lines), lines
    assert "100%" in lines[-1] and "1.00k/1.00k" in lines[-1] and "loss=2.0" in lines[-1]
    assert len(lines) == len(set(lines)) <= 5  # the start and each update at most once; close adds nothing new


def test_lines_are_spaced_by_the_interval_and_a_short_step_writes_none(capsys):
    bar = progress_bar(total=100, desc="search", unit="eval", interval=0.05)
    for _ in range(4):
        time.sleep(0.03)
        bar.update(1)
    bar.update(96)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert 2 <= len(lines) <= 4 and "100/100" in lines[-1], lines

    with progress_bar(total=100, desc="search", unit="eval", interval=3600.0) as bar:
        bar.update(100)
    assert capsys.readouterr().err == ""


def test_a_failing_step_ends_without_a_progress_line(capsys):
    with pytest.raises(ValueError), progress_bar(total=10, desc="tokenizing", unit="B", interval=0.2) as bar:
        bar.update(1)
        time.sleep(0.3)  # the line due after the interval shows 1/10
        bar.update(4)  # within the interval of that line: not yet shown
        raise ValueError("bad input")
    lines = capsys.readouterr().err.splitlines()
    assert lines and all("1/10" in line for line in lines), lines


def test_one_slow_item_still_gets_a_dated_line_every_interval(capsys):
    with progress_bar(total=2, desc="search", unit="eval", interval=0.05) as bar:
        time.sleep(0.33)  # one candidate that takes over six intervals
        bar.update(2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 4 and all("0/2" in line for line in lines[:-1]) and "2/2" in lines[-1], lines


def test_inactive_and_transient_bars_write_nothing_to_a_log(capsys):
    assert list(progress_bar(range(3), desc="eval", unit="batch", active=False)) == [0, 1, 2]
    assert list(progress_bar(range(3), desc="eval", unit="batch", leave=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
