"""The engine's clock: engine code reads "now" only through `now()`.

`advance()` and `shifted()` move it for the whole process (every thread), and it keeps ticking:
benchmarks and demos use them to bring timers due without waiting. Tests may instead move the
system time (e.g. time-machine); `now()` follows that too.

SpiffWorkflow's timer events read the time themselves; engine/runtime/spiff_patches.py (loaded by
the adapter, spiff.py) points them at this clock, so a timer is due by the same clock that the
`timer` table, leases and escalations are judged by.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

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
