"""FEEL's range built-ins (DMN 1.4): `before`, `after`, `includes`, `range` and Allen's interval
relations (§10.3.4.11), registered in engine/dmn/feel_registry.py."""

from __future__ import annotations

import re
from typing import Any

from engine.dmn import feel_ops as ops
from engine.dmn.feel_registry import BUILTINS, builtin, str_arg
from engine.dmn.feel_values import (
    FeelFunction,
    Range,
)

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
    raw = str_arg(text).strip()
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
