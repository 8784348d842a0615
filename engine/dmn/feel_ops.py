"""FEEL operators on values: arithmetic, comparison and equality with FEEL's null semantics
(an operation on null or on values of mismatched types gives null, never an exception)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from decimal import Decimal, DecimalException
from typing import Any

from engine.dmn.feel_values import FEEL_CONTEXT, Range, YearsMonths


def _is_number(v: Any) -> bool:
    return isinstance(v, Decimal)


def _add_months(value: date | datetime, months: int) -> date | datetime:
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _as_datetime(v: date | datetime) -> datetime:
    return v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)


def _aware_pair(a: datetime, b: datetime) -> tuple[datetime, datetime] | None:
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return a, b


def add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        if _is_number(a) and _is_number(b):
            return FEEL_CONTEXT.add(a, b)
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, timedelta) and isinstance(b, timedelta):
            return a + b
        if isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
            return YearsMonths(a.months + b.months)
        if isinstance(b, (date, time)) and isinstance(a, (timedelta, YearsMonths)):
            a, b = b, a
        if isinstance(a, (date, datetime)) and isinstance(b, YearsMonths):
            return _add_months(a, b.months)
        if isinstance(a, datetime) and isinstance(b, timedelta):
            return a + b
        if isinstance(a, date) and isinstance(b, timedelta):
            return (_as_datetime(a) + b).date()
        if isinstance(a, time) and isinstance(b, timedelta):
            moved = datetime.combine(date(2000, 1, 1), a) + b
            return moved.timetz() if a.tzinfo else moved.time()
    except (ArithmeticError, OverflowError, ValueError, DecimalException):
        return None
    return None


def negate(a: Any) -> Any:
    if _is_number(a):
        return -a
    if isinstance(a, timedelta):
        return -a
    if isinstance(a, YearsMonths):
        return YearsMonths(-a.months)
    return None


def sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        if _is_number(a) and _is_number(b):
            return FEEL_CONTEXT.subtract(a, b)
        if isinstance(a, (date, datetime)) and isinstance(b, (date, datetime)):
            pair = _aware_pair(_as_datetime(a), _as_datetime(b))
            return None if pair is None else pair[0] - pair[1]
        if isinstance(a, time) and isinstance(b, time):
            return datetime.combine(date(2000, 1, 1), a) - datetime.combine(date(2000, 1, 1), b)
        if isinstance(b, (timedelta, YearsMonths)) and not isinstance(a, (str, Decimal)):
            return add(a, negate(b))
    except (ArithmeticError, OverflowError, ValueError, TypeError, DecimalException):
        return None
    return None


def mul(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        if _is_number(a) and _is_number(b):
            return FEEL_CONTEXT.multiply(a, b)
        if _is_number(a) and isinstance(b, (timedelta, YearsMonths)):
            a, b = b, a
        if isinstance(a, timedelta) and _is_number(b):
            return timedelta(seconds=float(Decimal(a.total_seconds()) * b))
        if isinstance(a, YearsMonths) and _is_number(b):
            return YearsMonths(int(a.months * b))
    except (ArithmeticError, OverflowError, ValueError, DecimalException):
        return None
    return None


def div(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        if _is_number(a) and _is_number(b):
            return None if b == 0 else FEEL_CONTEXT.divide(a, b)
        if isinstance(a, timedelta) and _is_number(b):
            return None if b == 0 else timedelta(seconds=float(Decimal(a.total_seconds()) / b))
        if isinstance(a, timedelta) and isinstance(b, timedelta):
            return None if not b else FEEL_CONTEXT.divide(Decimal(a.total_seconds()), Decimal(b.total_seconds()))
        if isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
            return None if not b.months else FEEL_CONTEXT.divide(Decimal(a.months), Decimal(b.months))
        if isinstance(a, YearsMonths) and _is_number(b):
            return None if b == 0 else YearsMonths(int(a.months / b))
    except (ArithmeticError, OverflowError, ValueError, DecimalException):
        return None
    return None


def power(a: Any, b: Any) -> Any:
    if not (_is_number(a) and _is_number(b)):
        return None
    try:
        if b == b.to_integral_value():
            return FEEL_CONTEXT.power(a, int(b))
        return FEEL_CONTEXT.power(a, b)
    except (ArithmeticError, OverflowError, ValueError, DecimalException):
        return None


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if _is_number(a) and _is_number(b):
        return a, b
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, datetime) and isinstance(b, datetime):
        return _aware_pair(a, b)
    if isinstance(a, datetime) != isinstance(b, datetime):
        return None
    if isinstance(a, date) and isinstance(b, date):
        return a, b
    if isinstance(a, time) and isinstance(b, time):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return None
        base = date(2000, 1, 1)
        return datetime.combine(base, a), datetime.combine(base, b)
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a, b
    if isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
        return a.months, b.months
    return None


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1, or None when FEEL cannot order the two values (null, different types)."""
    if a is None or b is None:
        return None
    pair = _comparable(a, b)
    if pair is None:
        return None
    x, y = pair
    try:
        return (x > y) - (x < y)
    except TypeError:
        return None


def equals(a: Any, b: Any) -> bool | None:
    """FEEL `=`: null = null is true, null = anything else is false, unlike types give null."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        results = [equals(x, y) for x, y in zip(a, b, strict=False)]
        return None if None in results else all(results)
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False
        results = [equals(a[k], b[k]) for k in a]
        return None if None in results else all(results)
    if isinstance(a, Range) and isinstance(b, Range):
        return a == b
    c = compare(a, b)
    return None if c is None else c == 0


def compare_op(op: str, a: Any, b: Any) -> bool | None:
    if op == "=":
        return equals(a, b)
    if op == "!=":
        r = equals(a, b)
        return None if r is None else not r
    c = compare(a, b)
    if c is None:
        return None
    return {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]


def truth_and(a: Any, b: Any) -> bool | None:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return None


def truth_or(a: Any, b: Any) -> bool | None:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None
