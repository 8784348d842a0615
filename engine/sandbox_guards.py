"""The sandbox's run-time guards (engine/sandbox.py): what RestrictedPython's rewritten code calls
for attribute and item access, writes, in-place operators and unpacking, and the `_binop_` guard
(engine/sandbox_compile.py routes `*`, `**`, `<<`, `+`, `%` through it) that refuses a result
which would exhaust memory in one C call before it is built. `GUARDS` goes into every namespace
after the task data, so no data key can replace a guard."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)

from engine.sandbox_compile import FRAME_ATTRIBUTES, MAX_INT_BITS, MAX_RANGE, MAX_SEQUENCE, ScriptError
from engine.sandbox_helpers import HELPERS

_BLOCKED_ATTRIBUTES = FRAME_ATTRIBUTES | {"mro", "format", "format_map", "with_traceback"}


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    if not isinstance(name, str) or name.startswith("_"):
        raise ScriptError(f"access to attribute {name!r} is not allowed")
    # Camunda users write ${order.total} over JSON data: a dict key wins over
    # dict methods so that `order.items` means the data, not dict.items.
    if isinstance(obj, dict) and name in obj:
        return obj[name]
    if name in _BLOCKED_ATTRIBUTES:
        raise ScriptError(f"access to attribute {name!r} is not allowed")
    value = getattr(obj, name, *default)
    if isinstance(obj, (str, list)) and name in _GROWTH_ESTIMATES:
        return _size_checked(obj, name, value)
    return value


def _joined_size(sep: str, items: list) -> int:
    return sum(len(i) for i in items if isinstance(i, str)) + len(sep) * max(len(items) - 1, 0)


def _replaced_size(s: str, old: str, new: str, count: int = -1) -> int:
    hits = s.count(old) if count < 0 else min(count, s.count(old))
    return len(s) + hits * max(len(new) - len(old), 0)


# Methods that can build a huge result in one C call, with an estimate of the
# result size computed from their arguments before calling them.
_GROWTH_ESTIMATES: dict[str, Callable[..., int]] = {
    "ljust": lambda s, width, *_: width,
    "rjust": lambda s, width, *_: width,
    "center": lambda s, width, *_: width,
    "zfill": lambda s, width: width,
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t") * tabsize,
    "replace": _replaced_size,
    "join": _joined_size,
    "extend": lambda lst, items: len(lst) + (len(items) if isinstance(items, (list, tuple, str)) else 0),
}


def _size_checked(obj: Any, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def checked(*args: Any) -> Any:
        if name == "join" and args:
            args = (list(args[0]),)  # materialise once so it can be measured
        try:
            size = _GROWTH_ESTIMATES[name](obj, *args)
        except TypeError:
            size = 0  # bad arguments: let the real method report them
        if isinstance(size, int) and size > MAX_SEQUENCE:
            raise ScriptError(f"result too large: {name}() would produce {size} items (limit {MAX_SEQUENCE})")
        return method(*args)

    return checked


def _guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


class _DictWriter:
    """What `_write_` hands out for dicts, so `order.total = 5` sets a key."""

    __slots__ = ("_target",)

    def __init__(self, target: dict) -> None:
        object.__setattr__(self, "_target", target)

    def __setattr__(self, name: str, value: Any) -> None:
        self._target[name] = value

    def __delattr__(self, name: str) -> None:
        del self._target[name]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._target[key]


def _guarded_write(obj: Any) -> Any:
    # Only task-data containers are writable; everything else (helpers,
    # lambdas, datetimes) is read-only.
    if isinstance(obj, dict):
        return _DictWriter(obj)
    if isinstance(obj, list):
        return obj
    raise ScriptError(f"cannot modify a {obj.__class__.__name__} object")


def _check_size(symbol: str, a: Any, b: Any) -> None:
    sized = (str, bytes, list, tuple)
    if symbol == "*":
        if isinstance(a, int) and isinstance(b, sized):
            a, b = b, a
        if isinstance(a, sized) and isinstance(b, int) and len(a) * b > MAX_SEQUENCE:
            raise ScriptError(f"result too large: {len(a) * b} items (limit {MAX_SEQUENCE})")
    elif symbol == "+":
        if isinstance(a, sized) and isinstance(b, sized) and len(a) + len(b) > MAX_SEQUENCE:
            raise ScriptError(f"result too large: {len(a) + len(b)} items (limit {MAX_SEQUENCE})")
    elif symbol == "%":
        # "%0999999999d" % 1 or "%*d" % (10**9, 1) would pad in C.
        if isinstance(a, str) and re.search(r"%[-#0 +]*(?:\*|\d{7,})|\.(?:\*|\d{7,})", a):
            raise ScriptError("this %-format width or precision is not allowed")
    elif not (isinstance(a, int) and isinstance(b, int)):
        return
    elif symbol == "**" and abs(a) > 1 and b > 0 and b * math.log2(abs(a)) > MAX_INT_BITS:
        raise ScriptError(f"result too large: {a} ** {b} (limit {MAX_INT_BITS} bits)")
    elif symbol == "<<" and a and b + a.bit_length() > MAX_INT_BITS:
        raise ScriptError(f"result too large: {a} << {b} (limit {MAX_INT_BITS} bits)")


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "+": operator.add, "%": operator.mod,
}
_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _binop(symbol: str, a: Any, b: Any) -> Any:
    _check_size(symbol, a, b)
    return _BINOPS[symbol](a, b)


def _inplacevar(op: str, a: Any, b: Any) -> Any:
    _check_size(op[:-1], a, b)
    return _INPLACE_OPS[op](a, b)


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise ScriptError(f"range() of {len(result)} elements is too large (limit {MAX_RANGE})")
    return result


HELPERS["range"] = _bounded_range

# RestrictedPython's rewritten code calls these; they go in after task data
# so a data key such as "_getattr_" can never replace a guard.
GUARDS: dict[str, Any] = {
    "_getattr_": _guarded_getattr,
    "_getitem_": _guarded_getitem,
    "_getiter_": iter,
    "_write_": _guarded_write,
    "_inplacevar_": _inplacevar,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_apply_": _apply,
    "_binop_": _binop,
    "__builtins__": HELPERS,
    "__name__": "sandbox",
}
