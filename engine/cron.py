"""Cron timer cycles as Camunda 7 writes them (Quartz syntax), evaluated by APScheduler's CronTrigger.

Camunda's `timeCycle` is either ISO 8601 (`R3/PT10M`, handled by SpiffWorkflow) or a Quartz cron
expression: 6 or 7 fields, seconds first — `sec min hour day-of-month month day-of-week [year]`,
e.g. `0/5 0/1 * 1/1 * ?` or `0 0 9 ? * MON-FRI`. APScheduler's CronTrigger does the calendar work;
this module only translates what Quartz writes differently:

- `?` ("no specific value" in day-of-month or day-of-week) is `*`;
- day-of-week numbers count 1=SUN … 7=SAT (APScheduler: 0=MON); they become names, and ranges
  (which may wrap past Saturday, `FRI-MON`) are listed day by day;
- `L` in day-of-month is `last`; `6L` / `FRIL` in day-of-week ("last Friday of the month") and
  `6#3` ("third Friday") become APScheduler's day expressions `last fri` and `3rd fri`;
- `W` (nearest weekday) and `LW` have no counterpart and are refused, naming the field.

Times are the configured time zone's (PDCAFLOW_TIMEZONE), as Camunda reads cron in its server's zone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from engine import settings

FIELDS = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # Quartz 1..7
_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}
_FIELD_CHARS = re.compile(r"^[0-9A-Za-z*?/,#\-]+$")


class CronError(ValueError):
    """A cron expression that cannot be evaluated; the message names the field."""


def is_cron(text: str | None) -> bool:
    """True if `text` looks like a Quartz cron expression (6 or 7 fields), not ISO 8601 or `${…}`."""
    if not text:
        return False
    parts = text.split()
    return len(parts) in (6, 7) and all(_FIELD_CHARS.match(p) for p in parts) and "${" not in text


def _day_name(token: str, field: str) -> str:
    token = token.strip().lower()
    if token.isdigit():
        number = int(token)
        if not 1 <= number <= 7:
            raise CronError(f"{field}: {token} is not a day of the week (1=SUN … 7=SAT)")
        return _DAYS[number - 1]
    if token[:3] in _DAYS and len(token) == 3:
        return token
    raise CronError(f"{field}: '{token}' is not a day of the week (1-7 or SUN-SAT)")


def _day_of_week(value: str) -> tuple[str, str | None]:
    """(APScheduler day_of_week, APScheduler day expression or None) for a Quartz day-of-week field."""
    field = "day-of-week"
    if value in ("?", "*"):
        return "*", None
    if "#" in value:
        day, _, nth = value.partition("#")
        if not nth.isdigit() or int(nth) not in _ORDINALS:
            raise CronError(f"{field}: '{value}': the number after # must be 1-5")
        return "*", f"{_ORDINALS[int(nth)]} {_day_name(day, field)}"
    if value.upper().endswith("L") and len(value) > 1:
        return "*", f"last {_day_name(value[:-1], field)}"
    parts = []
    for item in value.split(","):
        base, slash, step = item.partition("/")
        if slash:
            raise CronError(f"{field}: '{value}': steps (/) are not supported in the day of the week; list the days")
        if "-" in base:
            first, _, last = base.partition("-")
            a, b = _DAYS.index(_day_name(first, field)), _DAYS.index(_day_name(last, field))
            # Listed one by one: APScheduler's ranges start at Monday, Quartz's at Sunday, and may wrap.
            days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
            parts.extend(_DAYS[d] for d in days)
        else:
            parts.append(_day_name(base, field))
    return ",".join(dict.fromkeys(parts)), None


def _plain(value: str, field: str) -> str:
    """A numeric field: Quartz `0/5` (from 0 every 5) is APScheduler's `0-max/5`, which it reads as `0/5` too."""
    if "?" in value:
        if value != "?":
            raise CronError(f"{field}: '{value}': '?' stands alone")
        return "*"
    if any(c.isalpha() for c in value.replace("L", "")) and field not in ("month",):
        raise CronError(f"{field}: '{value}' is not a valid value")
    return value


def trigger(text: str) -> CronTrigger:
    """The CronTrigger of a Quartz cron expression; CronError naming the field if it is not valid."""
    parts = text.split()
    if len(parts) not in (6, 7):
        raise CronError(f"a cron expression has 6 or 7 fields (seconds minutes hours day-of-month month "
                        f"day-of-week [year]); '{text.strip()}' has {len(parts)}")
    sec, minute, hour, dom, month, dow = parts[:6]
    year = parts[6] if len(parts) == 7 else None
    if dom != "?" and dow != "?" and "*" not in (dom, dow):
        raise CronError("day-of-month and day-of-week: one of them must be '?' (Quartz does not combine them)")
    if "W" in dom.upper():
        raise CronError(f"day-of-month: '{dom}': 'W' (nearest weekday) is not supported")
    fields = {"second": (_plain(sec, "seconds"), "seconds"), "minute": (_plain(minute, "minutes"), "minutes"),
              "hour": (_plain(hour, "hours"), "hours"), "month": (_plain(month, "month").lower(), "month")}
    day_of_week, day_expr = _day_of_week(dow)
    if dom.upper() == "L":
        day = "last"
    elif dom.upper().startswith("L-") or dom.upper().endswith("L"):
        raise CronError(f"day-of-month: '{dom}' is not supported (only 'L' for the last day)")
    else:
        day = _plain(dom, "day-of-month")
    if day_expr is not None:
        day = day_expr
    fields["day"] = (day, "day-of-month" if day_expr is None else "day-of-week")
    fields["day_of_week"] = (day_of_week, "day-of-week")
    if year is not None:
        fields["year"] = (_plain(year, "year"), "year")
    kwargs = {name: value for name, (value, _) in fields.items()}
    try:
        return CronTrigger(**kwargs, timezone=settings.current().timezone)
    except ValueError as exc:
        # APScheduler names the offending value, not the field: try each field alone to name it.
        for name, (value, label) in fields.items():
            try:
                CronTrigger(**{name: value})
            except ValueError as inner:
                raise CronError(f"{label}: '{value}': {inner}") from exc
        raise CronError(str(exc)) from exc


def next_after(text: str, after: datetime) -> datetime | None:
    """The first time strictly after `after` the cron expression fires (None: never again)."""
    return trigger(text).get_next_fire_time(None, after + timedelta(microseconds=1))


__all__ = ["CronError", "FIELDS", "is_cron", "next_after", "trigger"]
