"""The engine's clock: engine code reads "now" only through `now()`.

`advance()` and `shifted()` move it for the whole process (every thread), and it keeps ticking:
benchmarks and demos use them to bring timers due without waiting. Tests may instead move the
system time (e.g. time-machine); `now()` follows that too.

SpiffWorkflow's timer events read the time themselves (``datetime.now(timezone.utc)`` in
``SpiffWorkflow.bpmn.specs.event_definitions.timer``); importing this module points that module's
``datetime`` at `_SpiffDatetime`, so a timer is due by the same clock that the `timer` table, leases
and escalations are judged by. SpiffWorkflow reads the time nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer

_offset = timedelta(0)


def now() -> datetime:
    """The current time (UTC, aware), moved by the offset set through `advance()` / `shifted()`."""
    return datetime.now(UTC) + _offset


def offset() -> timedelta:
    """How far the engine clock is ahead of the system clock (negative: behind)."""
    return _offset


def advance(delta: timedelta) -> None:
    """Move the engine clock by `delta` (negative moves it back) until `reset()`."""
    global _offset
    _offset += delta


def reset() -> None:
    """Back to the system clock."""
    global _offset
    _offset = timedelta(0)


@contextmanager
def shifted(delta: timedelta) -> Iterator[None]:
    """Move the engine clock by `delta` for the duration of the block, then restore the previous offset."""
    global _offset
    previous = _offset
    _offset = previous + delta
    try:
        yield
    finally:
        _offset = previous


class _DelegateToDatetime(type):
    # Everything but now() is the real datetime class, and isinstance() checks accept real
    # datetimes, so no object of a stand-in class ever leaves SpiffWorkflow.
    def __getattr__(cls, name: str) -> Any:
        return getattr(datetime, name)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, datetime)


class _SpiffDatetime(metaclass=_DelegateToDatetime):
    """What SpiffWorkflow's timer module sees as `datetime`: its `now()` is the engine clock."""

    @staticmethod
    def now(tz: tzinfo | None = None) -> datetime:
        current = now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


_spiff_timer.datetime = _SpiffDatetime
