"""The table of FEEL's built-in functions (`BUILTINS`, filled by the modules that define them:
engine/dmn/feel_builtins.py and the list and range built-ins it imports), calling one with
positional or named arguments, and the argument checks the built-ins share. A built-in given
arguments of the wrong type returns null, as FEEL says."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Any

from engine.dmn.feel_values import FeelError, FeelFunction

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


def num_arg(v: Any) -> Decimal:
    if not isinstance(v, Decimal):
        raise ValueError("not a number")
    return v


def str_arg(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("not a string")
    return v


def list_arg(v: Any) -> list:
    if v is None:
        raise ValueError("null list")
    return v if isinstance(v, list) else [v]


def varargs(args: tuple) -> list:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
