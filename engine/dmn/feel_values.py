"""FEEL's value types as Python holds them, and the conversions between them and process data.

number → Decimal (34 significant digits, as FEEL's decimal128); string → str; boolean → bool;
null → None; date → datetime.date; time → datetime.time; date and time → datetime.datetime;
days and time duration → datetime.timedelta; years and months duration → YearsMonths;
list → list; context → dict; range → Range; function → FeelFunction.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FEEL_CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN, Emax=6144, Emin=-6143)


class FeelError(Exception):
    """A FEEL evaluation that cannot go on (an unknown name, a failing built-in call)."""


@dataclass(frozen=True)
class YearsMonths:
    months: int

    def __str__(self) -> str:
        sign = "-" if self.months < 0 else ""
        years, months = divmod(abs(self.months), 12)
        body = (f"{years}Y" if years else "") + (f"{months}M" if months or not years else "")
        return f"{sign}P{body}"


@dataclass(frozen=True)
class Range:
    low: Any
    high: Any
    low_closed: bool
    high_closed: bool

    def contains(self, value: Any) -> bool | None:
        from engine.dmn.feel_ops import compare
        if value is None:
            return None
        if self.low is not None:
            c = compare(value, self.low)
            if c is None:
                return None
            if c < 0 or (c == 0 and not self.low_closed):
                return False
        if self.high is not None:
            c = compare(value, self.high)
            if c is None:
                return None
            if c > 0 or (c == 0 and not self.high_closed):
                return False
        return True


@dataclass
class FeelFunction:
    name: str
    call: Callable[..., Any]
    params: tuple[str, ...] | None = None  # None: positional only (built-ins with varargs)


def number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return FEEL_CONTEXT.create_decimal(repr(value) if isinstance(value, float) else str(value))


_DURATION = re.compile(r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> timedelta | YearsMonths:
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "-P") or text.strip().endswith("T"):
        raise FeelError(f"not an ISO 8601 duration: {text!r}")
    sign, years, months, days, hours, minutes, seconds = m.groups()
    if (years or months) and (days or hours or minutes or seconds):
        raise FeelError(f"a FEEL duration is either years and months or days and time: {text!r}")
    factor = -1 if sign else 1
    if years or months:
        return YearsMonths(factor * (int(years or 0) * 12 + int(months or 0)))
    return factor * timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                              seconds=float(seconds or 0))


def duration_text(value: timedelta) -> str:
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(value)
    days, rest = total.days, total.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    frac = total.microseconds
    out = f"{sign}P" + (f"{days}D" if days else "")
    clock_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or frac:
        clock_part += f"{seconds}.{frac:06d}".rstrip("0").rstrip(".") + "S"
    if clock_part:
        out += "T" + clock_part
    return out if out not in ("P", "-P") else "PT0S"


def parse_date(text: str) -> date:
    try:
        if not re.fullmatch(r"-?\d{4,9}-\d{2}-\d{2}", text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FeelError(f"not a date: {text!r}") from None


def _zone(name: str) -> Any:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FeelError(f"unknown time zone {name!r}") from None


def parse_time(text: str) -> time:
    raw, _, zone = text.strip().partition("@")
    raw = raw.replace("Z", "+00:00")
    try:
        value = time.fromisoformat(raw)
    except ValueError:
        raise FeelError(f"not a time: {text!r}") from None
    return value.replace(tzinfo=_zone(zone)) if zone and value.tzinfo is None else value


def parse_date_time(text: str) -> datetime:
    raw = text.strip()
    if "T" not in raw:
        return datetime.combine(parse_date(raw), time())
    day, _, clock_text = raw.partition("T")
    clock_text, _, zone = clock_text.partition("@")
    value = datetime.combine(parse_date(day), parse_time(clock_text))
    return value.replace(tzinfo=_zone(zone)) if zone and value.tzinfo is None else value


def to_feel(value: Any) -> Any:
    """Process data (JSON-like) → FEEL values: numbers become Decimal, the rest is kept."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, Decimal)):
        return value
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, dict):
        return {str(k): to_feel(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_feel(v) for v in value]
    return value


def to_python(value: Any) -> Any:
    """FEEL values → plain JSON-friendly data for process variables and API answers."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < Decimal(10) ** 18:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, YearsMonths):
        return str(value)
    if isinstance(value, Range):
        return {"start": to_python(value.low), "end": to_python(value.high),
                "start included": value.low_closed, "end included": value.high_closed}
    if isinstance(value, FeelFunction):
        return f"function {value.name}"
    return value


UTC = timezone.utc
