"""FEEL's built-in functions (DMN 1.3 §10.3.4): conversion, string, number, boolean, context, date;
importing this module registers every built-in, the list functions (engine/dmn/feel_list_builtins.py)
and the range functions and interval relations (engine/dmn/feel_range_builtins.py) too.

Each is registered with its parameter names (engine/dmn/feel_registry.py) so named arguments work
(`substring(string: s, start position: 2)`). A built-in given arguments of the wrong type returns
null, as FEEL says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)
from typing import Any

from engine import clock
from engine.dmn import feel_list_builtins, feel_range_builtins  # noqa: F401  (they register themselves)
from engine.dmn import feel_ops as ops
from engine.dmn.feel_registry import BUILTINS, builtin, list_arg, num_arg, str_arg
from engine.dmn.feel_values import (
    FEEL_CONTEXT,
    FeelFunction,
    YearsMonths,
    number,
    parse_date,
    parse_date_time,
    parse_duration,
    parse_time,
    to_python,
)

# ---------------------------------------------------------------- conversion

@builtin("date", "from", "month", "day")
def _date(a: Any, month: Any = None, day: Any = None) -> date | None:
    if month is not None or day is not None:
        return date(int(num_arg(a)), int(num_arg(month)), int(num_arg(day)))
    if isinstance(a, datetime):
        return a.date()
    if isinstance(a, date):
        return a
    return parse_date(str_arg(a))


@builtin("date and time", "date", "time")
def _date_and_time(a: Any, t: Any = None) -> datetime | None:
    if t is not None:
        d = a.date() if isinstance(a, datetime) else a
        if not isinstance(d, date) or not isinstance(t, time):
            return None
        return datetime.combine(d, t)
    if isinstance(a, datetime):
        return a
    if isinstance(a, date):
        return datetime(a.year, a.month, a.day)
    return parse_date_time(str_arg(a))


@builtin("time", "from", "minute", "second", "offset")
def _time(a: Any, minute: Any = None, second: Any = None, offset: Any = None) -> time | None:
    if minute is not None:
        from datetime import timezone
        sec = num_arg(second)
        tz = timezone(offset) if isinstance(offset, timedelta) else None
        return time(int(num_arg(a)), int(num_arg(minute)), int(sec), int((sec % 1) * 1_000_000), tzinfo=tz)
    if isinstance(a, datetime):
        return a.timetz()
    if isinstance(a, date):
        return time(0, 0)
    if isinstance(a, time):
        return a
    return parse_time(str_arg(a))


@builtin("duration", "from")
def _duration(text: Any) -> Any:
    return parse_duration(str_arg(text))


@builtin("years and months duration", "from", "to")
def _ym_duration(a: Any, b: Any) -> YearsMonths:
    if not isinstance(a, date) or not isinstance(b, date):
        raise ValueError
    months = (b.year - a.year) * 12 + (b.month - a.month)
    if months > 0 and b.day < a.day:
        months -= 1
    elif months < 0 and b.day > a.day:
        months += 1
    return YearsMonths(months)


@builtin("number", "from", "grouping separator", "decimal separator")
def _number(text: Any, grouping: Any = None, decimal_sep: Any = None) -> Decimal:
    raw = str_arg(text)
    if grouping:
        raw = raw.replace(grouping, "")
    if decimal_sep:
        raw = raw.replace(decimal_sep, ".")
    if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", raw.strip()):
        raise ValueError
    return number(raw.strip())


def feel_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
        return text
    py = to_python(value)
    return py if isinstance(py, str) else str(py)


@builtin("string", "from")
def _string(value: Any) -> str | None:
    return feel_string(value)


# ---------------------------------------------------------------- strings

@builtin("substring", "string", "start position", "length")
def _substring(s: Any, start: Any, length: Any = None) -> str:
    chars = list(str_arg(s))
    begin = int(num_arg(start))
    begin = begin - 1 if begin > 0 else len(chars) + begin
    end = len(chars) if length is None else begin + int(num_arg(length))
    return "".join(chars[max(begin, 0):end])


@builtin("string length", "string")
def _string_length(s: Any) -> Decimal:
    return Decimal(len(str_arg(s)))


BUILTINS["upper case"] = FeelFunction("upper case", lambda s: str_arg(s).upper(), ("string",))
BUILTINS["lower case"] = FeelFunction("lower case", lambda s: str_arg(s).lower(), ("string",))
BUILTINS["contains"] = FeelFunction("contains", lambda s, m: str_arg(m) in str_arg(s), ("string", "match"))
BUILTINS["starts with"] = FeelFunction("starts with", lambda s, m: str_arg(s).startswith(str_arg(m)), ("string", "match"))
BUILTINS["ends with"] = FeelFunction("ends with", lambda s, m: str_arg(s).endswith(str_arg(m)), ("string", "match"))


@builtin("substring before", "string", "match")
def _before(s: Any, m: Any) -> str:
    s, m = str_arg(s), str_arg(m)
    return s[:s.index(m)] if m in s else ""


@builtin("substring after", "string", "match")
def _after(s: Any, m: Any) -> str:
    s, m = str_arg(s), str_arg(m)
    return s[s.index(m) + len(m):] if m in s else ""


def _flags(flags: Any) -> int:
    out = 0
    for f in flags or "":
        out |= {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}.get(f, 0)
    return out


def _pattern(p: Any, flags: Any = None) -> re.Pattern:
    text = str_arg(p)
    if len(text) > 1000:
        raise ValueError("pattern too long")
    return re.compile(text, _flags(flags))


@builtin("matches", "input", "pattern", "flags")
def _matches(s: Any, p: Any, flags: Any = None) -> bool:
    return _pattern(p, flags).search(str_arg(s)) is not None


@builtin("replace", "input", "pattern", "replacement", "flags")
def _replace(s: Any, p: Any, r: Any, flags: Any = None) -> str:
    replacement = re.sub(r"\$(\d)", r"\\\1", str_arg(r))
    return _pattern(p, flags).sub(replacement, str_arg(s))


@builtin("split", "string", "delimiter")
def _split(s: Any, d: Any) -> list[str]:
    return _pattern(d).split(str_arg(s))


@builtin("string join", "list", "delimiter")
def _join(items: Any, d: Any = None) -> str:
    return (d or "").join(str_arg(x) for x in list_arg(items) if x is not None)


# ---------------------------------------------------------------- numbers

def _round(mode: str) -> Callable[..., Decimal]:
    def fn(n: Any, scale: Any = Decimal(0)) -> Decimal:
        return num_arg(n).quantize(Decimal(1).scaleb(-int(num_arg(scale))), rounding=mode, context=FEEL_CONTEXT)
    return fn


for _name, _mode_name in (("decimal", ROUND_HALF_EVEN), ("round half up", ROUND_HALF_UP),
                          ("round half down", ROUND_HALF_DOWN), ("round up", ROUND_UP), ("round down", ROUND_DOWN)):
    BUILTINS[_name] = FeelFunction(_name, _round(_mode_name), ("n", "scale"))
BUILTINS["floor"] = FeelFunction("floor", _round(ROUND_FLOOR), ("n", "scale"))
BUILTINS["ceiling"] = FeelFunction("ceiling", _round(ROUND_CEILING), ("n", "scale"))


@builtin("abs", "n")
def _abs(n: Any) -> Any:
    if isinstance(n, timedelta):
        return abs(n)
    if isinstance(n, YearsMonths):
        return YearsMonths(abs(n.months))
    return abs(num_arg(n))


@builtin("modulo", "dividend", "divisor")
def _modulo(a: Any, b: Any) -> Decimal | None:
    a, b = num_arg(a), num_arg(b)
    if b == 0:
        return None
    return FEEL_CONTEXT.subtract(a, FEEL_CONTEXT.multiply(b, (a / b).to_integral_value(rounding=ROUND_FLOOR)))


@builtin("sqrt", "number")
def _sqrt(n: Any) -> Decimal | None:
    n = num_arg(n)
    return None if n < 0 else FEEL_CONTEXT.sqrt(n)


@builtin("log", "number")
def _log(n: Any) -> Decimal | None:
    n = num_arg(n)
    return None if n <= 0 else FEEL_CONTEXT.ln(n)


@builtin("exp", "number")
def _exp(n: Any) -> Decimal:
    return FEEL_CONTEXT.exp(num_arg(n))


@builtin("odd", "number")
def _odd(n: Any) -> bool | None:
    n = num_arg(n)
    return None if n != n.to_integral_value() else int(n) % 2 == 1


@builtin("even", "number")
def _even(n: Any) -> bool | None:
    n = num_arg(n)
    return None if n != n.to_integral_value() else int(n) % 2 == 0


# ---------------------------------------------------------------- boolean, context, misc

BUILTINS["not"] = FeelFunction("not", lambda v: (not v) if isinstance(v, bool) else None, ("negand",))


@builtin("is", "value1", "value2")
def _is(a: Any, b: Any) -> bool:
    """Same type and equal (a date is not a date and time; a time keeps its offset)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (datetime, time)) and a.tzinfo != b.tzinfo:
        return False
    return ops.equals(a, b) is True


@builtin("is defined", "value")
def _is_defined(v: Any) -> bool:
    return v is not None


@builtin("get value", "m", "key")
def _get_value(m: Any, key: Any) -> Any:
    return m.get(str_arg(key)) if isinstance(m, dict) else None


@builtin("get entries", "m")
def _get_entries(m: Any) -> list | None:
    return [{"key": k, "value": v} for k, v in m.items()] if isinstance(m, dict) else None


@builtin("context", "entries")
def _context(entries: Any) -> dict:
    return {str_arg(e["key"]): e.get("value") for e in list_arg(entries)}


@builtin("now")
def _now() -> datetime:
    return clock.now()


@builtin("today")
def _today() -> date:
    return clock.now().date()


@builtin("day of week", "date")
def _day_of_week(d: Any) -> str:
    return ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[d.weekday()]


@builtin("day of year", "date")
def _day_of_year(d: Any) -> Decimal:
    return Decimal(d.timetuple().tm_yday)


@builtin("month of year", "date")
def _month_of_year(d: Any) -> str:
    return ("January", "February", "March", "April", "May", "June", "July", "August", "September",
            "October", "November", "December")[d.month - 1]


@builtin("week of year", "date")
def _week_of_year(d: Any) -> Decimal:
    return Decimal(d.isocalendar()[1])


@builtin("context put", "context", "key", "value")
def _context_put(m: Any, key: Any, value: Any) -> dict | None:
    if not isinstance(m, dict):
        return None
    if isinstance(key, list):  # a path of keys (DMN 1.5)
        if not key:
            return None
        head, rest = str_arg(key[0]), key[1:]
        return {**m, head: _context_put(m.get(head) if rest else {}, rest, value) if rest else value}
    return {**m, str_arg(key): value}


@builtin("context merge", "contexts")
def _context_merge(contexts: Any) -> dict | None:
    out: dict = {}
    for m in list_arg(contexts):
        if not isinstance(m, dict):
            return None
        out.update(m)
    return out
