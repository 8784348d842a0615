"""The FEEL interpreter: evaluates the trees engine/dmn/feel_parser.py builds.

Public entry points:
- `evaluate(text, variables)`: a FEEL expression (literal expression, input expression, output entry);
- `unary_test(text, value, variables)`: does an input entry (`[1..5]`, `"a","b"`, `not(>3)`, `-`) match?
- `check_expression(text)` / `check_unary_tests(text)`: syntax only, for deploy-time checks.

Names resolve in the scope first, then among the built-ins (`BUILTINS`, engine/dmn/feel_registry.py,
filled by engine/dmn/feel_builtins.py and the modules it imports). An unknown
name raises FeelError (an incident naming it, rather than a silent null); every other failure inside
an operation is FEEL's null.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from lark import Token, Tree

from engine.dmn import feel_builtins  # noqa: F401  (registers the built-ins)
from engine.dmn import feel_ops as ops
from engine.dmn.feel_parser import FeelSyntaxError, parse_expression, parse_unary_tests
from engine.dmn.feel_registry import BUILTINS, call_function
from engine.dmn.feel_values import (
    FeelError,
    FeelFunction,
    Range,
    YearsMonths,
    number,
    parse_date,
    parse_date_time,
    parse_duration,
    parse_time,
    to_feel,
)

__all__ = ["BUILTINS", "FeelError", "FeelSyntaxError", "call_function", "evaluate", "unary_test",
           "check_expression", "check_unary_tests", "evaluate_tree"]

INPUT = "?"
_INPUT_NAMES = " input names"  # not a FEEL name: the scope entry listing what names the input value
MAX_RANGE_ITEMS = 100_000  # `for i in 1..n` builds a list: bound what one expression may allocate
_MISSING = object()


def check_expression(text: str) -> None:
    parse_expression(text)


def check_unary_tests(text: str) -> None:
    parse_unary_tests(text)


def evaluate(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    """Evaluate a FEEL expression; `variables` hold FEEL values (see feel_values.to_feel)."""
    scope = dict(variables or {})
    text = _alias_special_names(text, scope)
    return evaluate_tree(parse_expression(text), ChainMap({}, scope))


def unary_test(text: str, value: Any, variables: Mapping[str, Any] | None = None, input_name: str = "") -> bool:
    """`input_name` also names the input value (Camunda 7's `cellInput`/`camunda:inputVariable`):
    a test written as a boolean expression over it, `cellInput > 3`, is that boolean."""
    scope = dict(variables or {})
    if input_name:
        scope[input_name] = value
    text = _alias_special_names(text, scope)
    tree = parse_unary_tests(text)
    inner = {INPUT: value, _INPUT_NAMES: (INPUT, input_name) if input_name else (INPUT,)}
    return _tests_match(tree, value, ChainMap(inner, scope)) is True


_PLAIN_NAME = re.compile(r"^[\w?' ]+$")
_STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"')


def _alias_special_names(text: str, scope: dict[str, Any]) -> str:
    """FEEL names may hold characters that are operators elsewhere ("Date-Time", "Pre-bureau Risk").
    Which text is such a name depends on what is in scope, so each one found in `text` (outside
    string literals) is replaced by a plain alias bound to the same value."""
    special = sorted((n for n in scope if isinstance(n, str) and not _PLAIN_NAME.match(n) and n in text),
                     key=len, reverse=True)
    if not special:
        return text
    parts = _STRING_LITERAL.split(text)
    literals = _STRING_LITERAL.findall(text)
    for index, name in enumerate(special):
        alias = f"_name_{index}_"
        pattern = re.compile(r"(?<![\w?])" + re.escape(name) + r"(?![\w?])")
        parts = [pattern.sub(alias, part) for part in parts]
        scope[alias] = scope[name]
    out = parts[0]
    for literal, part in zip(literals, parts[1:], strict=False):
        out += literal + part
    return out


# ---------------------------------------------------------------- unary tests

def _tests_match(tree: Tree, value: Any, scope: ChainMap) -> bool | None:
    if tree.data == "any_input":
        return True
    tests = tree.children if tree.data in ("tests", "unary_tests_inner", "test_list") else [tree]
    if len(tests) == 1 and isinstance(tests[0], Tree) and tests[0].data == "not_call":
        inner = _tests_match(tests[0].children[1], value, scope)
        return None if inner is None else not inner
    results = [_test_matches(t, value, scope) for t in tests]
    if True in results:
        return True
    return None if None in results else False


def _mentions_input(tree: Any, names: tuple[str, ...] = (INPUT,)) -> bool:
    if isinstance(tree, Tree):
        if tree.data == "var" and _name(tree.children[0]) in names:
            return True
        return any(_mentions_input(c, names) for c in tree.children)
    return False


def _test_matches(test: Any, value: Any, scope: ChainMap) -> bool | None:
    if isinstance(test, Tree) and test.data == "compare_test":
        op, expr = test.children
        return ops.compare_op(str(op), value, evaluate_tree(expr, scope))
    if isinstance(test, Tree) and test.data == "not_call":
        inner = _tests_match(test.children[1], value, scope)
        return None if inner is None else not inner
    expected = evaluate_tree(test, scope)
    if isinstance(expected, bool) and _mentions_input(test, scope.get(_INPUT_NAMES, (INPUT,))):
        return expected
    return _value_matches(value, expected)


def _value_matches(value: Any, expected: Any) -> bool | None:
    if isinstance(expected, Range):
        return expected.contains(value)
    if isinstance(expected, list) and not isinstance(value, list):
        results = [e.contains(value) if isinstance(e, Range) else ops.equals(value, e) for e in expected]
        return True if True in results else (None if None in results else False)
    if isinstance(expected, FeelFunction):
        return call_function(expected, [value]) is True
    return ops.equals(value, expected)


# ---------------------------------------------------------------- expressions

def _name(tree: Tree) -> str:
    return " ".join(str(t) for t in tree.children)


def _lookup(name: str, scope: Mapping[str, Any]) -> Any:
    value = scope.get(name, _MISSING)
    if value is not _MISSING:
        return value
    if name in BUILTINS:
        return BUILTINS[name]
    raise FeelError(f"unknown name '{name}'")


def evaluate_tree(tree: Any, scope: ChainMap) -> Any:
    if isinstance(tree, Token):
        raise FeelError(f"unexpected token {tree!s}")
    handler = _HANDLERS.get(tree.data)
    if handler is None:
        if len(tree.children) == 1:
            return evaluate_tree(tree.children[0], scope)
        raise FeelError(f"cannot evaluate {tree.data}")
    return handler(tree, scope)


def _string_literal(token: Token) -> str:
    raw = str(token)[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt == "u" and i + 5 < len(raw) + 1:
                try:
                    out.append(chr(int(raw[i + 2:i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
        out.append(ch)
        i += 1
    return "".join(out)


def _h_number(t: Tree, s: ChainMap) -> Decimal:
    return number(str(t.children[0]))


def _h_string(t: Tree, s: ChainMap) -> str:
    return _string_literal(t.children[0])


def _h_var(t: Tree, s: ChainMap) -> Any:
    return _lookup(_name(t.children[0]), s)


def _h_list(t: Tree, s: ChainMap) -> list:
    return [evaluate_tree(c, s) for c in t.children if c is not None]


def _h_context(t: Tree, s: ChainMap) -> dict:
    out: dict[str, Any] = {}
    inner = s.new_child(out)
    for entry in t.children:
        if entry is None:
            continue
        key_node, expr = entry.children
        key = _name(key_node) if isinstance(key_node, Tree) else _string_literal(key_node)
        out[key] = evaluate_tree(expr, inner)
    return out


def _h_range(t: Tree, s: ChainMap) -> Range:
    start, low, high, end = t.children
    return Range(evaluate_tree(low, s), evaluate_tree(high, s), str(start) == "[", str(end) == "]")


def _h_at(t: Tree, s: ChainMap) -> Any:
    text = _string_literal(t.children[0])
    if text.startswith(("P", "-P")):
        return parse_duration(text)
    if "T" in text:
        return parse_date_time(text)
    if ":" in text:
        return parse_time(text)
    return parse_date(text)


def _binary(fn: Any) -> Any:
    def handler(t: Tree, s: ChainMap) -> Any:
        return fn(evaluate_tree(t.children[0], s), evaluate_tree(t.children[1], s))
    return handler


def _h_neg(t: Tree, s: ChainMap) -> Any:
    return ops.negate(evaluate_tree(t.children[0], s))


def _h_and(t: Tree, s: ChainMap) -> Any:
    a = evaluate_tree(t.children[0], s)
    if a is False:
        return False
    b = evaluate_tree(t.children[1], s)
    return ops.truth_and(a if isinstance(a, bool) else None, b if isinstance(b, bool) else None)


def _h_or(t: Tree, s: ChainMap) -> Any:
    a = evaluate_tree(t.children[0], s)
    if a is True:
        return True
    b = evaluate_tree(t.children[1], s)
    return ops.truth_or(a if isinstance(a, bool) else None, b if isinstance(b, bool) else None)


def _h_compare(t: Tree, s: ChainMap) -> Any:
    left, op, right = t.children
    return ops.compare_op(str(op), evaluate_tree(left, s), evaluate_tree(right, s))


def _h_between(t: Tree, s: ChainMap) -> Any:
    v, lo, hi = (evaluate_tree(c, s) for c in t.children)
    return ops.truth_and(ops.compare_op(">=", v, lo), ops.compare_op("<=", v, hi))


def _h_in(t: Tree, s: ChainMap) -> Any:
    value = evaluate_tree(t.children[0], s)
    target = t.children[1]
    scope = s.new_child({INPUT: value})
    if isinstance(target, Tree) and target.data in ("test_list", "not_call", "compare_test"):
        return _tests_match(target, value, scope)
    return _test_matches(target, value, scope)


def _h_if(t: Tree, s: ChainMap) -> Any:
    cond, then, other = t.children
    return evaluate_tree(then if evaluate_tree(cond, s) is True else other, s)


def _h_path(t: Tree, s: ChainMap) -> Any:
    base = evaluate_tree(t.children[0], s)
    return _property(base, _name(t.children[1]))


_PROPERTIES = {
    "year": lambda v: v.year, "month": lambda v: v.month, "day": lambda v: v.day,
    "hour": lambda v: v.hour, "minute": lambda v: v.minute, "second": lambda v: v.second,
    "weekday": lambda v: v.isoweekday(),
}


def _property(base: Any, key: str) -> Any:
    if isinstance(base, dict):
        return base.get(key)
    if isinstance(base, list):
        return [_property(item, key) for item in base]
    if isinstance(base, (date, time)) and key in _PROPERTIES:
        try:
            return Decimal(_PROPERTIES[key](base))
        except AttributeError:
            return None
    if isinstance(base, (datetime, time)) and key in ("time offset", "timezone"):
        offset = base.utcoffset()
        return None if offset is None else (offset if key == "time offset" else str(base.tzinfo))
    if isinstance(base, timedelta):
        total = int(base.total_seconds())
        sign = -1 if total < 0 else 1
        days, rest = divmod(abs(total), 86400)
        parts = {"days": days, "hours": rest // 3600, "minutes": rest % 3600 // 60, "seconds": rest % 60}
        return Decimal(sign * parts[key]) if key in parts else None
    if isinstance(base, YearsMonths):
        sign = -1 if base.months < 0 else 1
        parts = {"years": abs(base.months) // 12, "months": abs(base.months) % 12}
        return Decimal(sign * parts[key]) if key in parts else None
    if isinstance(base, Range):
        return {"start": base.low, "end": base.high, "start included": base.low_closed,
                "end included": base.high_closed}.get(key)
    return None


def _h_filter(t: Tree, s: ChainMap) -> Any:
    base = evaluate_tree(t.children[0], s)
    expr = t.children[1]
    items = base if isinstance(base, list) else [base]
    try:
        index = evaluate_tree(expr, s)
    except FeelError:
        index = None
    if isinstance(index, Decimal) and not _mentions_item(expr):
        n = int(index)
        if n > 0 and n <= len(items):
            return items[n - 1]
        if n < 0 and -n <= len(items):
            return items[n]
        return None
    out = []
    for item in items:
        frame = dict(item) if isinstance(item, dict) else {}
        frame["item"] = item
        if evaluate_tree(expr, s.new_child(frame)) is True:
            out.append(item)
    return out


def _mentions_item(tree: Any) -> bool:
    if isinstance(tree, Tree):
        if tree.data == "var" and _name(tree.children[0]) == "item":
            return True
        return any(_mentions_item(c) for c in tree.children)
    return False


def _h_call(t: Tree, s: ChainMap) -> Any:
    callee, args = t.children
    fn = evaluate_tree(callee, s)
    if not isinstance(fn, FeelFunction):
        name = _name(callee.children[0]) if isinstance(callee, Tree) and callee.data == "var" else "value"
        raise FeelError(f"'{name}' is not a function")
    if args is None:
        return call_function(fn, [])
    if args.data == "named":
        named = {_name(a.children[0]): evaluate_tree(a.children[1], s) for a in args.children}
        return call_function(fn, [], named)
    return call_function(fn, [evaluate_tree(a, s) for a in args.children])


def _h_not_call(t: Tree, s: ChainMap) -> Any:
    tests = t.children[1].children
    if len(tests) != 1 or (isinstance(tests[0], Tree) and tests[0].data in ("compare_test",)):
        raise FeelError("not(...) with unary tests is only allowed in a decision table's input entry")
    value = evaluate_tree(tests[0], s)
    return (not value) if isinstance(value, bool) else None


def _h_for(t: Tree, s: ChainMap) -> Any:
    *iterations, body = t.children
    results: list[Any] = []

    def loop(i: int, scope: ChainMap) -> None:
        if i == len(iterations):
            if len(results) >= MAX_RANGE_ITEMS:
                raise FeelError(f"a for expression may give at most {MAX_RANGE_ITEMS} items")
            results.append(evaluate_tree(body, scope.new_child({"partial": results})))
            return
        name_node, first, *rest = iterations[i].children
        start = evaluate_tree(first, scope)
        if rest and rest[0] is not None:
            end = evaluate_tree(rest[0], scope)
            if not (isinstance(start, Decimal) and isinstance(end, Decimal)):
                raise FeelError("a for range needs numbers")
            step = 1 if end >= start else -1
            if abs(int(end) - int(start)) > MAX_RANGE_ITEMS:
                raise FeelError(f"a for range may have at most {MAX_RANGE_ITEMS} items")
            values: list[Any] = [Decimal(v) for v in range(int(start), int(end) + step, step)]
        else:
            values = start if isinstance(start, list) else [start]
        for v in values:
            loop(i + 1, scope.new_child({_name(name_node): v}))

    loop(0, s)
    return results


def _h_quantified(t: Tree, s: ChainMap) -> Any:
    quantifier = str(t.children[0])
    *pairs, cond = t.children[1:]
    outcomes: list[Any] = []

    def loop(i: int, scope: ChainMap) -> None:
        if i == len(pairs):
            if len(outcomes) >= MAX_RANGE_ITEMS:
                raise FeelError(f"a quantified expression may test at most {MAX_RANGE_ITEMS} items")
            outcomes.append(evaluate_tree(cond, scope))
            return
        values = evaluate_tree(pairs[i + 1], scope)
        for v in values if isinstance(values, list) else [values]:
            loop(i + 2, scope.new_child({_name(pairs[i]): v}))

    loop(0, s)
    if quantifier == "some":
        return True if True in outcomes else (False if all(o is False for o in outcomes) else None)
    return False if False in outcomes else (True if all(o is True for o in outcomes) else None)


def _h_function_def(t: Tree, s: ChainMap) -> FeelFunction:
    *params, body = t.children
    names = tuple(_name(p.children[0]) for p in params if p is not None)

    def call(*args: Any) -> Any:
        return evaluate_tree(body, s.new_child(dict(zip(names, args, strict=False))))

    return FeelFunction("anonymous", call, names)


_TYPE_CHECKS = {
    "number": lambda v: isinstance(v, Decimal), "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool), "date": lambda v: isinstance(v, date) and not isinstance(v, datetime),
    "time": lambda v: isinstance(v, time), "date and time": lambda v: isinstance(v, datetime),
    "days and time duration": lambda v: isinstance(v, timedelta),
    "years and months duration": lambda v: isinstance(v, YearsMonths),
    "list": lambda v: isinstance(v, list), "context": lambda v: isinstance(v, dict),
    "range": lambda v: isinstance(v, Range), "function": lambda v: isinstance(v, FeelFunction),
    "Any": lambda v: v is not None, "Null": lambda v: v is None,
}


def _h_instance_of(t: Tree, s: ChainMap) -> Any:
    value = evaluate_tree(t.children[0], s)
    type_name = _name(t.children[2].children[0])
    check = _TYPE_CHECKS.get(type_name)
    if check is None:
        raise FeelError(f"unknown type '{type_name}'")
    return check(value)


_HANDLERS = {
    "number": _h_number, "string": _h_string, "true": lambda t, s: True, "false": lambda t, s: False,
    "null": lambda t, s: None, "var": _h_var, "list_": _h_list, "context": _h_context, "range": _h_range,
    "at_literal": _h_at, "add": _binary(ops.add), "sub": _binary(ops.sub), "mul": _binary(ops.mul),
    "div": _binary(ops.div), "pow": _binary(ops.power), "neg": _h_neg, "and_": _h_and, "or_": _h_or,
    "compare": _h_compare, "between": _h_between, "in_": _h_in, "if_expr": _h_if, "path": _h_path,
    "filter": _h_filter, "call": _h_call, "not_call": _h_not_call, "for_expr": _h_for,
    "quantified": _h_quantified, "function_def": _h_function_def, "instance_of": _h_instance_of,
}

# Re-exported for callers that feed process data in.
feel_value = to_feel
