"""FEEL's built-in functions (DMN 1.3 §10.3.4): conversion, string, list, number, boolean, date.

Each is registered with its parameter names so named arguments work (`substring(string: s,
start position: 2)`). A built-in given arguments of the wrong type returns null, as FEEL says.
"""

from __future__ import annotations

import re
import statistics
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
    DecimalException,
)
from typing import Any

from engine import clock
from engine.dmn import feel_ops as ops
from engine.dmn.feel_values import (
    FEEL_CONTEXT,
    FeelError,
    FeelFunction,
    Range,
    YearsMonths,
    number,
    parse_date,
    parse_date_time,
    parse_duration,
    parse_time,
    to_python,
)

BUILTINS: dict[str, FeelFunction] = {}


def call_function(fn: FeelFunction, args: list[Any], named: dict[str, Any] | None = None) -> Any:
    if named:
        if fn.params is None:
            raise FeelError(f"'{fn.name}' takes no named arguments")
        unknown = set(named) - set(fn.params)
        if unknown:
            raise FeelError(f"'{fn.name}' has no parameter '{sorted(unknown)[0]}'")
        args = [named.get(p) for p in fn.params]
        while args and args[-1] is None and fn.params[len(args) - 1] not in named:
            args.pop()
    try:
        return fn.call(*args)
    except TypeError as exc:
        if "argument" in str(exc):
            raise FeelError(f"wrong number of arguments for '{fn.name}'") from None
        return None
    except (ValueError, ArithmeticError, DecimalException, AttributeError, IndexError, KeyError, OverflowError):
        return None


def builtin(name: str, *params: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        BUILTINS[name] = FeelFunction(name, fn, params or None)
        return fn
    return register


def _num(v: Any) -> Decimal:
    if not isinstance(v, Decimal):
        raise ValueError("not a number")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("not a string")
    return v


def _list(v: Any) -> list:
    if v is None:
        raise ValueError("null list")
    return v if isinstance(v, list) else [v]


def _varargs(args: tuple) -> list:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)


# ---------------------------------------------------------------- conversion

@builtin("date", "from", "month", "day")
def _date(a: Any, month: Any = None, day: Any = None) -> date | None:
    if month is not None or day is not None:
        return date(int(_num(a)), int(_num(month)), int(_num(day)))
    if isinstance(a, datetime):
        return a.date()
    if isinstance(a, date):
        return a
    return parse_date(_str(a))


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
    return parse_date_time(_str(a))


@builtin("time", "from", "minute", "second", "offset")
def _time(a: Any, minute: Any = None, second: Any = None, offset: Any = None) -> time | None:
    if minute is not None:
        from datetime import timezone
        sec = _num(second)
        tz = timezone(offset) if isinstance(offset, timedelta) else None
        return time(int(_num(a)), int(_num(minute)), int(sec), int((sec % 1) * 1_000_000), tzinfo=tz)
    if isinstance(a, datetime):
        return a.timetz()
    if isinstance(a, date):
        return time(0, 0)
    if isinstance(a, time):
        return a
    return parse_time(_str(a))


@builtin("duration", "from")
def _duration(text: Any) -> Any:
    return parse_duration(_str(text))


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
    raw = _str(text)
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
    chars = list(_str(s))
    begin = int(_num(start))
    begin = begin - 1 if begin > 0 else len(chars) + begin
    end = len(chars) if length is None else begin + int(_num(length))
    return "".join(chars[max(begin, 0):end])


@builtin("string length", "string")
def _string_length(s: Any) -> Decimal:
    return Decimal(len(_str(s)))


BUILTINS["upper case"] = FeelFunction("upper case", lambda s: _str(s).upper(), ("string",))
BUILTINS["lower case"] = FeelFunction("lower case", lambda s: _str(s).lower(), ("string",))
BUILTINS["contains"] = FeelFunction("contains", lambda s, m: _str(m) in _str(s), ("string", "match"))
BUILTINS["starts with"] = FeelFunction("starts with", lambda s, m: _str(s).startswith(_str(m)), ("string", "match"))
BUILTINS["ends with"] = FeelFunction("ends with", lambda s, m: _str(s).endswith(_str(m)), ("string", "match"))


@builtin("substring before", "string", "match")
def _before(s: Any, m: Any) -> str:
    s, m = _str(s), _str(m)
    return s[:s.index(m)] if m in s else ""


@builtin("substring after", "string", "match")
def _after(s: Any, m: Any) -> str:
    s, m = _str(s), _str(m)
    return s[s.index(m) + len(m):] if m in s else ""


def _flags(flags: Any) -> int:
    out = 0
    for f in flags or "":
        out |= {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}.get(f, 0)
    return out


def _pattern(p: Any, flags: Any = None) -> re.Pattern:
    text = _str(p)
    if len(text) > 1000:
        raise ValueError("pattern too long")
    return re.compile(text, _flags(flags))


@builtin("matches", "input", "pattern", "flags")
def _matches(s: Any, p: Any, flags: Any = None) -> bool:
    return _pattern(p, flags).search(_str(s)) is not None


@builtin("replace", "input", "pattern", "replacement", "flags")
def _replace(s: Any, p: Any, r: Any, flags: Any = None) -> str:
    replacement = re.sub(r"\$(\d)", r"\\\1", _str(r))
    return _pattern(p, flags).sub(replacement, _str(s))


@builtin("split", "string", "delimiter")
def _split(s: Any, d: Any) -> list[str]:
    return _pattern(d).split(_str(s))


@builtin("string join", "list", "delimiter")
def _join(items: Any, d: Any = None) -> str:
    return (d or "").join(_str(x) for x in _list(items) if x is not None)


# ---------------------------------------------------------------- lists

@builtin("list contains", "list", "element")
def _list_contains(items: Any, e: Any) -> bool:
    return any(ops.equals(x, e) for x in _list(items))


@builtin("count", "list")
def _count(*args: Any) -> Decimal:
    return Decimal(len(_varargs(args)))


def _extreme(args: tuple, pick: int) -> Any:
    items = _varargs(args)
    if not items:
        return None
    best = items[0]
    for x in items[1:]:
        c = ops.compare(x, best)
        if c is None:
            return None
        if c == pick:
            best = x
    return best


BUILTINS["min"] = FeelFunction("min", lambda *a: _extreme(a, -1), ("list",))
BUILTINS["max"] = FeelFunction("max", lambda *a: _extreme(a, 1), ("list",))


@builtin("sum", "list")
def _sum(*args: Any) -> Decimal | None:
    items = _varargs(args)
    if not items:
        return None
    total = Decimal(0)
    for x in items:
        total = FEEL_CONTEXT.add(total, _num(x))
    return total


@builtin("mean", "list")
def _mean(*args: Any) -> Decimal | None:
    items = _varargs(args)
    return FEEL_CONTEXT.divide(_sum(*items), Decimal(len(items))) if items else None


@builtin("product", "list")
def _product(*args: Any) -> Decimal | None:
    items = _varargs(args)
    if not items:
        return None
    total = Decimal(1)
    for x in items:
        total = FEEL_CONTEXT.multiply(total, _num(x))
    return total


@builtin("median", "list")
def _median(*args: Any) -> Decimal | None:
    items = sorted(_num(x) for x in _varargs(args))
    if not items:
        return None
    mid = len(items) // 2
    return items[mid] if len(items) % 2 else FEEL_CONTEXT.divide(items[mid - 1] + items[mid], Decimal(2))


@builtin("stddev", "list")
def _stddev(*args: Any) -> Decimal | None:
    items = [_num(x) for x in _varargs(args)]
    return None if len(items) < 2 else FEEL_CONTEXT.sqrt(statistics.variance(items))


@builtin("mode", "list")
def _mode(*args: Any) -> list:
    items = [_num(x) for x in _varargs(args)]
    if not items:
        return []
    counts: dict[Decimal, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    top = max(counts.values())
    return sorted(k for k, v in counts.items() if v == top)


@builtin("all", "list")
def _all(*args: Any) -> bool | None:
    items = _varargs(args)
    if any(x is False for x in items):
        return False
    return True if all(x is True for x in items) else None


@builtin("any", "list")
def _any(*args: Any) -> bool | None:
    items = _varargs(args)
    if any(x is True for x in items):
        return True
    return False if all(x is False for x in items) else None


BUILTINS["and"] = BUILTINS["all"]
BUILTINS["or"] = BUILTINS["any"]


@builtin("sublist", "list", "start position", "length")
def _sublist(items: Any, start: Any, length: Any = None) -> list:
    items = _list(items)
    begin = int(_num(start))
    begin = begin - 1 if begin > 0 else len(items) + begin
    end = len(items) if length is None else begin + int(_num(length))
    return items[begin:end]


@builtin("append", "list", "item")
def _append(items: Any, *more: Any) -> list:
    return _list(items) + list(more)


@builtin("concatenate", "list")
def _concatenate(*lists: Any) -> list:
    out: list = []
    for x in lists:
        out.extend(_list(x))
    return out


@builtin("insert before", "list", "position", "newItem")
def _insert_before(items: Any, pos: Any, new: Any) -> list:
    items = list(_list(items))
    p = int(_num(pos))
    items.insert(p - 1 if p > 0 else len(items) + p, new)
    return items


@builtin("remove", "list", "position")
def _remove(items: Any, pos: Any) -> list:
    items = list(_list(items))
    p = int(_num(pos))
    del items[p - 1 if p > 0 else p]
    return items


BUILTINS["reverse"] = FeelFunction("reverse", lambda items: list(reversed(_list(items))), ("list",))


@builtin("index of", "list", "match")
def _index_of(items: Any, m: Any) -> list:
    return [Decimal(i + 1) for i, x in enumerate(_list(items)) if ops.equals(x, m)]


@builtin("distinct values", "list")
def _distinct(items: Any) -> list:
    out: list = []
    for x in _list(items):
        if not any(ops.equals(x, y) for y in out):
            out.append(x)
    return out


@builtin("union", "list")
def _union(*lists: Any) -> list:
    return _distinct(_concatenate(*lists))


@builtin("flatten", "list")
def _flatten(items: Any) -> list:
    out: list = []
    for x in _list(items):
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


@builtin("sort", "list", "precedes")
def _sort(items: Any, precedes: Any = None) -> list:
    import functools
    items = list(_list(items))
    if precedes is None:
        return sorted(items, key=functools.cmp_to_key(lambda a, b: ops.compare(a, b) or 0))
    return sorted(items, key=functools.cmp_to_key(
        lambda a, b: -1 if call_function(precedes, [a, b]) is True else 1))


# ---------------------------------------------------------------- numbers

def _round(mode: str) -> Callable[..., Decimal]:
    def fn(n: Any, scale: Any = Decimal(0)) -> Decimal:
        return _num(n).quantize(Decimal(1).scaleb(-int(_num(scale))), rounding=mode, context=FEEL_CONTEXT)
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
    return abs(_num(n))


@builtin("modulo", "dividend", "divisor")
def _modulo(a: Any, b: Any) -> Decimal | None:
    a, b = _num(a), _num(b)
    if b == 0:
        return None
    return FEEL_CONTEXT.subtract(a, FEEL_CONTEXT.multiply(b, (a / b).to_integral_value(rounding=ROUND_FLOOR)))


@builtin("sqrt", "number")
def _sqrt(n: Any) -> Decimal | None:
    n = _num(n)
    return None if n < 0 else FEEL_CONTEXT.sqrt(n)


@builtin("log", "number")
def _log(n: Any) -> Decimal | None:
    n = _num(n)
    return None if n <= 0 else FEEL_CONTEXT.ln(n)


@builtin("exp", "number")
def _exp(n: Any) -> Decimal:
    return FEEL_CONTEXT.exp(_num(n))


@builtin("odd", "number")
def _odd(n: Any) -> bool | None:
    n = _num(n)
    return None if n != n.to_integral_value() else int(n) % 2 == 1


@builtin("even", "number")
def _even(n: Any) -> bool | None:
    n = _num(n)
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
    return m.get(_str(key)) if isinstance(m, dict) else None


@builtin("get entries", "m")
def _get_entries(m: Any) -> list | None:
    return [{"key": k, "value": v} for k, v in m.items()] if isinstance(m, dict) else None


@builtin("context", "entries")
def _context(entries: Any) -> dict:
    return {_str(e["key"]): e.get("value") for e in _list(entries)}


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


# ---------------------------------------------------------------- ranges (DMN 1.4)

@builtin("before", "point1", "point2")
def _before_fn(a: Any, b: Any) -> bool | None:
    hi = a.high if isinstance(a, Range) else a
    lo = b.low if isinstance(b, Range) else b
    c = ops.compare(hi, lo)
    if c is None:
        return None
    open_edge = (isinstance(a, Range) and not a.high_closed) or (isinstance(b, Range) and not b.low_closed)
    return c < 0 or (c == 0 and open_edge)


@builtin("after", "point1", "point2")
def _after_fn(a: Any, b: Any) -> bool | None:
    return _before_fn(b, a)


@builtin("includes", "range", "point")
def _includes(r: Any, p: Any) -> bool | None:
    return r.contains(p) if isinstance(r, Range) else None





@builtin("range", "from")
def _range(text: Any) -> Range | None:
    from engine.dmn.feel import evaluate
    raw = _str(text).strip()
    match = re.match(r"^(<=|>=|<|>|=)\s*(.+)$", raw)
    if match:  # DMN 1.4: "< 10" is the range ]null..10[
        op, point = match.group(1), evaluate(match.group(2))
        if op == "=":
            return Range(point, point, True, True)
        if op.startswith("<"):
            return Range(None, point, False, op == "<=")
        return Range(point, None, op == ">=", False)
    value = evaluate(raw)
    return value if isinstance(value, Range) else None


@builtin("context put", "context", "key", "value")
def _context_put(m: Any, key: Any, value: Any) -> dict | None:
    if not isinstance(m, dict):
        return None
    if isinstance(key, list):  # a path of keys (DMN 1.5)
        if not key:
            return None
        head, rest = _str(key[0]), key[1:]
        return {**m, head: _context_put(m.get(head) if rest else {}, rest, value) if rest else value}
    return {**m, _str(key): value}


@builtin("context merge", "contexts")
def _context_merge(contexts: Any) -> dict | None:
    out: dict = {}
    for m in _list(contexts):
        if not isinstance(m, dict):
            return None
        out.update(m)
    return out


@builtin("list replace", "list", "position", "newItem")
def _list_replace(items: Any, where: Any, new: Any) -> list | None:
    items = list(_list(items))
    if isinstance(where, FeelFunction):
        return [new if call_function(where, [x, new]) is True else x for x in items]
    p = int(_num(where))
    if p == 0 or abs(p) > len(items):
        return None
    items[p - 1 if p > 0 else p] = new
    return items


# ---------------------------------------------------------------- Allen's interval relations (DMN 1.4 §10.3.4.11)

def _edges(v: Any) -> tuple[Any, Any, bool, bool]:
    """(low, high, low closed, high closed) of a range, or of a point as a closed degenerate range."""
    if isinstance(v, Range):
        return v.low, v.high, v.low_closed, v.high_closed
    return v, v, True, True


def _cmp(a: Any, b: Any) -> int:
    c = ops.compare(a, b)
    if c is None:
        raise ValueError("not comparable")
    return c


def _overlaps_before(a: Any, b: Any) -> bool:
    (s1, e1, sc1, ec1), (s2, e2, sc2, ec2) = _edges(a), _edges(b)
    return ((_cmp(s1, s2) < 0 or (_cmp(s1, s2) == 0 and sc1 and not sc2))
            and (_cmp(e1, s2) > 0 or (_cmp(e1, s2) == 0 and ec1 and sc2))
            and (_cmp(e1, e2) < 0 or (_cmp(e1, e2) == 0 and (not ec1 or ec2))))


def _meets(a: Any, b: Any) -> bool:
    (_, e1, _, ec1), (s2, _, sc2, _) = _edges(a), _edges(b)
    return ec1 and sc2 and _cmp(e1, s2) == 0


def _starts(a: Any, b: Any) -> bool:
    (s1, e1, sc1, ec1), (s2, e2, sc2, ec2) = _edges(a), _edges(b)
    return (_cmp(s1, s2) == 0 and sc1 == sc2
            and (_cmp(e1, e2) < 0 or (_cmp(e1, e2) == 0 and (not ec1 or ec2))))


def _finishes(a: Any, b: Any) -> bool:
    (s1, e1, sc1, ec1), (s2, e2, sc2, ec2) = _edges(a), _edges(b)
    return (_cmp(e1, e2) == 0 and ec1 == ec2
            and (_cmp(s1, s2) > 0 or (_cmp(s1, s2) == 0 and (not sc1 or sc2))))


def _during(a: Any, b: Any) -> bool:
    (s1, e1, sc1, ec1), (s2, e2, sc2, ec2) = _edges(a), _edges(b)
    return ((_cmp(s2, s1) < 0 or (_cmp(s2, s1) == 0 and (sc2 or not sc1)))
            and (_cmp(e1, e2) < 0 or (_cmp(e1, e2) == 0 and (ec2 or not ec1))))


def _coincides(a: Any, b: Any) -> bool:
    (s1, e1, sc1, ec1), (s2, e2, sc2, ec2) = _edges(a), _edges(b)
    return _cmp(s1, s2) == 0 and _cmp(e1, e2) == 0 and sc1 == sc2 and ec1 == ec2


_INTERVALS = {
    "overlaps before": (_overlaps_before, ("range1", "range2")),
    "overlaps after": (lambda a, b: _overlaps_before(b, a), ("range1", "range2")),
    "overlaps": (lambda a, b: _overlaps_before(a, b) or _overlaps_before(b, a) or _during(a, b) or _during(b, a)
                 or _coincides(a, b), ("range1", "range2")),
    "meets": (_meets, ("range1", "range2")),
    "met by": (lambda a, b: _meets(b, a), ("range1", "range2")),
    "starts": (_starts, ("point", "range")),
    "started by": (lambda a, b: _starts(b, a), ("range", "point")),
    "finishes": (_finishes, ("point", "range")),
    "finished by": (lambda a, b: _finishes(b, a), ("range", "point")),
    "during": (_during, ("point", "range")),
    "coincides": (_coincides, ("point1", "point2")),
}
for _name, (_fn, _params) in _INTERVALS.items():
    BUILTINS[_name] = FeelFunction(_name, lambda a, b, _f=_fn: None if a is None or b is None else _f(a, b), _params)


def _includes_any(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    return _during(b, a)


BUILTINS["includes"] = FeelFunction("includes", _includes_any, ("range", "point"))
