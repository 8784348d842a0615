"""Single source of "now" so tests can move time (e.g. with time-machine)."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
