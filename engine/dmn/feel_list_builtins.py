"""FEEL's list built-ins (DMN 1.3 §10.3.4.4, `list replace` from DMN 1.4), registered in
engine/dmn/feel_registry.py."""

from __future__ import annotations

import statistics
from decimal import (
    Decimal,
)
from typing import Any

from engine.dmn import feel_ops as ops
from engine.dmn.feel_registry import BUILTINS, builtin, call_function, list_arg, num_arg, varargs
from engine.dmn.feel_values import (
    FEEL_CONTEXT,
    FeelFunction,
)

# ---------------------------------------------------------------- lists

@builtin("list contains", "list", "element")
def _list_contains(items: Any, e: Any) -> bool:
    return any(ops.equals(x, e) for x in list_arg(items))


@builtin("count", "list")
def _count(*args: Any) -> Decimal:
    return Decimal(len(varargs(args)))


def _extreme(args: tuple, pick: int) -> Any:
    items = varargs(args)
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


def _fold(args: tuple[Any, ...], start: int, step: Any) -> Decimal | None:
    """`step` over the numbers of a list (or varargs), from `start`; null for an empty list."""
    items = varargs(args)
    if not items:
        return None
    total = Decimal(start)
    for x in items:
        total = step(total, num_arg(x))
    return total


@builtin("sum", "list")
def _sum(*args: Any) -> Decimal | None:
    return _fold(args, 0, FEEL_CONTEXT.add)


@builtin("mean", "list")
def _mean(*args: Any) -> Decimal | None:
    items = varargs(args)
    return FEEL_CONTEXT.divide(_sum(*items), Decimal(len(items))) if items else None


@builtin("product", "list")
def _product(*args: Any) -> Decimal | None:
    return _fold(args, 1, FEEL_CONTEXT.multiply)


@builtin("median", "list")
def _median(*args: Any) -> Decimal | None:
    items = sorted(num_arg(x) for x in varargs(args))
    if not items:
        return None
    mid = len(items) // 2
    return items[mid] if len(items) % 2 else FEEL_CONTEXT.divide(items[mid - 1] + items[mid], Decimal(2))


@builtin("stddev", "list")
def _stddev(*args: Any) -> Decimal | None:
    items = [num_arg(x) for x in varargs(args)]
    return None if len(items) < 2 else FEEL_CONTEXT.sqrt(statistics.variance(items))


@builtin("mode", "list")
def _mode(*args: Any) -> list:
    items = [num_arg(x) for x in varargs(args)]
    if not items:
        return []
    counts: dict[Decimal, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    top = max(counts.values())
    return sorted(k for k, v in counts.items() if v == top)


@builtin("all", "list")
def _all(*args: Any) -> bool | None:
    items = varargs(args)
    if any(x is False for x in items):
        return False
    return True if all(x is True for x in items) else None


@builtin("any", "list")
def _any(*args: Any) -> bool | None:
    items = varargs(args)
    if any(x is True for x in items):
        return True
    return False if all(x is False for x in items) else None


BUILTINS["and"] = BUILTINS["all"]
BUILTINS["or"] = BUILTINS["any"]


@builtin("sublist", "list", "start position", "length")
def _sublist(items: Any, start: Any, length: Any = None) -> list:
    items = list_arg(items)
    begin = int(num_arg(start))
    begin = begin - 1 if begin > 0 else len(items) + begin
    end = len(items) if length is None else begin + int(num_arg(length))
    return items[begin:end]


@builtin("append", "list", "item")
def _append(items: Any, *more: Any) -> list:
    return list_arg(items) + list(more)


@builtin("concatenate", "list")
def _concatenate(*lists: Any) -> list:
    out: list = []
    for x in lists:
        out.extend(list_arg(x))
    return out


@builtin("insert before", "list", "position", "newItem")
def _insert_before(items: Any, pos: Any, new: Any) -> list:
    items = list(list_arg(items))
    p = int(num_arg(pos))
    items.insert(p - 1 if p > 0 else len(items) + p, new)
    return items


@builtin("remove", "list", "position")
def _remove(items: Any, pos: Any) -> list:
    items = list(list_arg(items))
    p = int(num_arg(pos))
    del items[p - 1 if p > 0 else p]
    return items


BUILTINS["reverse"] = FeelFunction("reverse", lambda items: list(reversed(list_arg(items))), ("list",))


@builtin("index of", "list", "match")
def _index_of(items: Any, m: Any) -> list:
    return [Decimal(i + 1) for i, x in enumerate(list_arg(items)) if ops.equals(x, m)]


@builtin("distinct values", "list")
def _distinct(items: Any) -> list:
    out: list = []
    for x in list_arg(items):
        if not any(ops.equals(x, y) for y in out):
            out.append(x)
    return out


@builtin("union", "list")
def _union(*lists: Any) -> list:
    return _distinct(_concatenate(*lists))


@builtin("flatten", "list")
def _flatten(items: Any) -> list:
    out: list = []
    for x in list_arg(items):
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


@builtin("sort", "list", "precedes")
def _sort(items: Any, precedes: Any = None) -> list:
    import functools
    items = list(list_arg(items))
    if precedes is None:
        return sorted(items, key=functools.cmp_to_key(lambda a, b: ops.compare(a, b) or 0))
    return sorted(items, key=functools.cmp_to_key(
        lambda a, b: -1 if call_function(precedes, [a, b]) is True else 1))


@builtin("list replace", "list", "position", "newItem")
def _list_replace(items: Any, where: Any, new: Any) -> list | None:
    items = list(list_arg(items))
    if isinstance(where, FeelFunction):
        return [new if call_function(where, [x, new]) is True else x for x in items]
    p = int(num_arg(where))
    if p == 0 or abs(p) > len(items):
        return None
    items[p - 1 if p > 0 else p] = new
    return items
