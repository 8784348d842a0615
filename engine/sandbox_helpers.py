"""The helpers sandboxed scripts and expressions may call: the one list (`HELPERS`).

Dates travel through process data as ISO text, so every helper takes and gives ISO text; the
current time comes from engine.clock.

Everything here is also imported by the sandbox's worker processes (engine/sandbox_worker.py), where
the namespace of a script is built; objects callers pass in a script's external context must be
picklable and their classes defined here (see the contract in engine/sandbox.py).
"""

from __future__ import annotations

import math
import re
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine import clock


class DataBound:
    """Base of external-context objects that read or write the script's variables by name
    (``execution.getVariable('x')``): the sandbox sends them all task data and calls `bind` with the
    script's namespace (in the worker) before running; writes to it are returned like assignments.
    After a successful run, what the worker's copy recorded in its own attributes (e.g. an assignee
    a task listener set) is copied onto the caller's object with `absorb`.

    The namespace also holds the sandbox's guards (names starting with '_'); skip those when listing.
    """

    def bind(self, variables: dict[str, Any]) -> None:
        self._variables = variables

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_variables", None)  # the namespace stays in the worker
        return state

    def absorb(self, other: DataBound) -> None:
        """Take over the state of the worker's copy after a run."""
        self.__dict__.update(other.__getstate__())


def _empty(value: Any) -> bool:
    """JUEL `empty`: None, '' and empty collections are empty."""
    if value is None:
        return True
    try:
        return len(value) == 0
    except TypeError:
        return False


def _iso(dt: datetime) -> str:
    text = dt.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _now() -> str:
    """Current UTC time, seconds precision, e.g. '2026-01-01T09:00:00Z'."""
    return _iso(clock.now().astimezone(UTC).replace(microsecond=0))


def _today() -> str:
    """Current UTC date, e.g. '2026-01-01'."""
    return clock.now().astimezone(UTC).date().isoformat()


def _parse_datetime(value: Any) -> datetime:
    """ISO date or date-time -> aware datetime; naive values and plain dates
    are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.strip())
    else:
        raise TypeError(f"expected an ISO 8601 date/time string, got {value.__class__.__name__}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


_DURATION_RE = re.compile(
    r"(?P<sign>-)?P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)


def _parse_duration(text: str) -> tuple[int, int, int, timedelta]:
    """-> (sign, years, months, fixed part)."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"}
    fixed = timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                      minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    return (-1 if match["sign"] else 1), int(parts.get("years", 0)), int(parts.get("months", 0)), fixed


def _add_months(dt: datetime, months: int) -> datetime:
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    day = min(dt.day, monthrange(year, month + 1)[1])  # 31 Jan + P1M -> 28/29 Feb
    return dt.replace(year=year, month=month + 1, day=day)


def _add_duration(value: str, duration: str) -> str:
    """Add an ISO 8601 duration to an ISO date or date-time string; a date
    stays a date when the duration has no time part."""
    sign, years, months, fixed = _parse_duration(duration)
    is_date = isinstance(value, str) and len(value.strip()) == 10
    dt = _add_months(_parse_datetime(value), sign * (years * 12 + months)) + sign * fixed
    if is_date and fixed % timedelta(days=1) == timedelta(0):
        return dt.date().isoformat()
    return _iso(dt)


def _days_between(start: str, end: str) -> float:
    """(end - start) in days, fractional."""
    return (_parse_datetime(end) - _parse_datetime(start)) / timedelta(days=1)


def _duration_seconds(duration: str) -> float:
    sign, years, months, fixed = _parse_duration(duration)
    if years or months:
        raise ValueError(f"{duration!r} has years or months, which have no fixed length in seconds")
    return sign * fixed.total_seconds()


HELPERS: dict[str, Any] = {
    # JUEL/FEEL literals, so DMN cells written `true`/`false`/`null` evaluate outside ${...} too
    "true": True, "false": False, "null": None,
    # builtins
    "len": len, "min": min, "max": max, "sum": sum, "abs": abs, "round": round,
    "sorted": sorted, "reversed": reversed, "any": any, "all": all, "map": map, "filter": filter,
    "int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict,
    "set": set, "tuple": tuple, "enumerate": enumerate, "zip": zip,
    # "range" is added by engine/sandbox.py with its size guard
    # exceptions scripts may raise or catch
    "Exception": Exception, "ValueError": ValueError, "TypeError": TypeError,
    "KeyError": KeyError, "IndexError": IndexError, "ZeroDivisionError": ZeroDivisionError,
    # JUEL
    "_empty": _empty,
    # dates and durations (ISO 8601 strings in, JSON-friendly values out)
    "now": _now, "today": _today, "parse_datetime": _parse_datetime,
    "add_duration": _add_duration, "days_between": _days_between,
    "duration_seconds": _duration_seconds,
    # math
    "floor": math.floor, "ceil": math.ceil,
}
