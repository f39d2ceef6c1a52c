"""The shared timebase (hwctl.timebase): the epoch is read from the environment once, not on
every clock reading (the node's hot path), and can be changed explicitly."""

from __future__ import annotations

import os

import pytest

from hwctl import timebase
from hwctl.errors import UserError


@pytest.fixture(autouse=True)
def _restore_epoch():
    yield
    os.environ.pop("HWCTL_EPOCH_NS", None)
    timebase.set_epoch_ns()


def test_epoch_is_read_once_and_changed_explicitly(monkeypatch) -> None:
    monkeypatch.delenv("HWCTL_EPOCH_NS", raising=False)
    assert timebase.set_epoch_ns() == timebase.DEFAULT_EPOCH_NS
    calls = []
    real_get = os.environ.get

    def counting_get(key, default=None):
        calls.append(key)
        return real_get(key, default)

    monkeypatch.setattr(os.environ, "get", counting_get)
    for _ in range(100):
        timebase.seconds()
        timebase.cycle_now()
    assert "HWCTL_EPOCH_NS" not in calls  # the hot path never reads the environment
    monkeypatch.undo()

    # a changed variable is not picked up by itself ...
    later = timebase.DEFAULT_EPOCH_NS + 10 * 10**9
    os.environ["HWCTL_EPOCH_NS"] = str(later)
    assert timebase.epoch_ns() == timebase.DEFAULT_EPOCH_NS
    # ... but set_epoch_ns() re-reads it (or takes a value)
    assert timebase.set_epoch_ns() == later
    now_ns = timebase.DEFAULT_EPOCH_NS + 25 * 10**9  # a fixed clock: no wall-clock reading
    monkeypatch.setattr(timebase.time, "time_ns", lambda: now_ns)
    assert timebase.seconds() == 15.0 and timebase.cycle_now(hz=100) == 1500
    assert timebase.seconds(timebase.DEFAULT_EPOCH_NS) == 25.0
    assert timebase.set_epoch_ns(timebase.DEFAULT_EPOCH_NS) == timebase.DEFAULT_EPOCH_NS
    assert timebase.seconds() == 25.0


def test_bad_epoch_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setenv("HWCTL_EPOCH_NS", "soon")
    with pytest.raises(UserError, match="HWCTL_EPOCH_NS"):
        timebase.set_epoch_ns()
