"""Decision tables: which rules match, and what the hit policy makes of the matches (DMN 1.3 §8.2).

U (UNIQUE) fails when several rules match, naming them; A (ANY) fails when the matches disagree;
F (FIRST) keeps the first; P (PRIORITY) the one whose outputs come first in the output values;
R (RULE ORDER) all in rule order; O (OUTPUT ORDER) all by output-value priority; C (COLLECT) all,
or one aggregated value with SUM (+), MIN (<), MAX (>) or COUNT (#).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dmn import feel, languages
from engine.dmn import feel_ops as ops
from engine.dmn.feel_parser import parse_unary_tests
from engine.dmn.feel_values import FeelError, parse_date, parse_date_time, parse_time
from engine.dmn.model import DecisionTable, Rule, TableOutput

HIT_POLICIES = {"UNIQUE", "ANY", "FIRST", "PRIORITY", "RULE_ORDER", "OUTPUT_ORDER", "COLLECT"}
AGGREGATIONS = {"SUM", "MIN", "MAX", "COUNT"}
_SINGLE_HIT = {"UNIQUE", "ANY", "FIRST", "PRIORITY"}


class DecisionEvaluationError(Exception):
    """A decision that cannot give a result (hit policy violated, FEEL error); becomes an incident or a 422."""


@dataclass
class TableResult:
    rows: list[dict[str, Any]]        # one {output name: value} per rule kept by the hit policy
    matched: list[str]                # ids of the rules kept, in that order
    aggregated: bool = False          # COLLECT with an aggregator: one row holds the aggregate

    def value(self, hit_policy: str, single_output: bool) -> Any:
        """The decision's FEEL value: a value or context for single-hit/aggregated, else a list."""
        def one(row: dict[str, Any]) -> Any:
            return next(iter(row.values())) if single_output else row
        if self.aggregated or hit_policy in _SINGLE_HIT:
            return one(self.rows[0]) if self.rows else None
        return [one(r) for r in self.rows]


def _feel_error(what: str, exc: Exception) -> DecisionEvaluationError:
    return DecisionEvaluationError(f"{what}: {exc}")


def _outputs(table: DecisionTable, rule: Rule, scope: Mapping[str, Any]) -> dict[str, Any]:
    row = {}
    for output, entry in zip(table.outputs, rule.outputs, strict=False):
        try:
            row[output.name] = languages.value_of(entry, scope) if entry.text.strip() else None
        except (feel.FeelError, feel.FeelSyntaxError) as exc:
            raise _feel_error(f"output entry of rule '{rule.id}'", exc) from None
    return row


def _defaults(table: DecisionTable, scope: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(o.default for o in table.outputs):
        return None
    row = {}
    for output in table.outputs:
        row[output.name] = feel.evaluate(output.default.text, scope) if output.default else None
    return row


def matching_rules(table: DecisionTable, scope: Mapping[str, Any]) -> list[Rule]:
    values = []
    for index, column in enumerate(table.inputs, start=1):
        label = column.label or column.expression.text
        try:
            values.append(coerce(languages.value_of(column.expression, scope), column.type_ref))
        except (feel.FeelError, feel.FeelSyntaxError) as exc:
            raise _feel_error(f"input expression {index} ('{label}')", exc) from None
    matched = []
    for rule in table.rules:
        ok = True
        for column, value, entry in zip(table.inputs, values, rule.inputs, strict=False):
            try:
                if not feel.unary_test(entry.text or "-", value, scope, column.input_variable):
                    ok = False
                    break
            except (feel.FeelError, feel.FeelSyntaxError) as exc:
                raise _feel_error(f"input entry of rule '{rule.id}'", exc) from None
        if ok:
            matched.append(rule)
    return matched


def coerce(value: Any, type_ref: str) -> Any:
    """Process data holds dates as ISO text: an input typed date, dateTime or time reads them as
    such (as Camunda 7's type transformers do), so `< date("2024-01-01")` can match."""
    if not isinstance(value, str) or not type_ref:
        return value
    kind = type_ref.split(":")[-1].lower()
    try:
        if kind == "date":
            return parse_date_time(value).date() if "T" in value else parse_date(value)
        if kind in ("datetime", "date and time"):
            return parse_date_time(value)
        if kind == "time":
            return parse_time(value)
    except FeelError:
        return value
    return value


def _priority_key(table: DecisionTable, row: dict[str, Any], scope: Mapping[str, Any]) -> tuple[int, ...]:
    """Position of each output value in its column's output values (unlisted values last)."""
    key = []
    for output in table.outputs:
        allowed = _output_values(output, scope)
        value = row.get(output.name)
        position = next((i for i, a in enumerate(allowed) if ops.equals(value, a)), len(allowed))
        key.append(position)
    return tuple(key)


def _output_values(output: TableOutput, scope: Mapping[str, Any]) -> list[Any]:
    if not output.output_values or not output.output_values.text.strip():
        return []
    value = feel.evaluate(f"[{output.output_values.text}]", scope)
    return value if isinstance(value, list) else [value]


def _aggregate(table: DecisionTable, rows: list[dict[str, Any]]) -> dict[str, Any]:
    if len(table.outputs) != 1:
        raise DecisionEvaluationError(f"hit policy COLLECT {table.aggregation} needs exactly one output column")
    name = table.outputs[0].name
    values = [r[name] for r in rows if r[name] is not None]
    if table.aggregation == "COUNT":
        return {name: Decimal(len(values))}
    if not values:
        return {name: None}
    if table.aggregation == "SUM":
        total: Any = values[0]
        for v in values[1:]:
            total = ops.add(total, v)
        return {name: total}
    pick = -1 if table.aggregation == "MIN" else 1
    best = values[0]
    for v in values[1:]:
        c = ops.compare(v, best)
        if c is None:
            raise DecisionEvaluationError(f"hit policy COLLECT {table.aggregation}: values cannot be compared")
        if c == pick:
            best = v
    return {name: best}


def evaluate_table(table: DecisionTable, scope: Mapping[str, Any]) -> TableResult:
    policy = table.hit_policy
    if policy not in HIT_POLICIES:
        raise DecisionEvaluationError(f"unknown hit policy '{table.hit_policy}'")
    rules = matching_rules(table, scope)
    rows = [_outputs(table, r, scope) for r in rules]
    ids = [r.id for r in rules]
    if not rules:
        default = _defaults(table, scope)
        if policy == "COLLECT" and table.aggregation:
            return TableResult([_aggregate(table, [])] if table.aggregation == "COUNT" else [], [], True)
        return TableResult([default] if default is not None else [], [])
    if policy == "UNIQUE" and len(rules) > 1:
        raise DecisionEvaluationError("hit policy UNIQUE: more than one rule matched: "
                                      + ", ".join(f"'{i}'" for i in ids))
    if policy == "ANY" and len(rules) > 1:
        first = rows[0]
        if any(ops.equals(r, first) is not True for r in rows[1:]):
            raise DecisionEvaluationError("hit policy ANY: the matching rules give different outputs: "
                                          + ", ".join(f"'{i}'" for i in ids))
        return TableResult(rows[:1], ids[:1])
    if policy in ("UNIQUE", "FIRST"):
        return TableResult(rows[:1], ids[:1])
    if policy in ("PRIORITY", "OUTPUT_ORDER"):
        order = sorted(range(len(rows)), key=lambda i: _priority_key(table, rows[i], scope))
        rows, ids = [rows[i] for i in order], [ids[i] for i in order]
        return TableResult(rows[:1], ids[:1]) if policy == "PRIORITY" else TableResult(rows, ids)
    if policy == "COLLECT" and table.aggregation:
        if table.aggregation not in AGGREGATIONS:
            raise DecisionEvaluationError(f"unknown aggregation '{table.aggregation}'")
        return TableResult([_aggregate(table, rows)], ids, True)
    return TableResult(rows, ids)


def check_table(table: DecisionTable) -> list[tuple[Any, str]]:
    """Syntax problems of a table: (Text or None, message) pairs, for deploy-time checks."""
    problems: list[tuple[Any, str]] = []
    if table.hit_policy not in HIT_POLICIES:
        problems.append((None, f"unknown hit policy '{table.hit_policy}'"))
    if table.aggregation and table.aggregation not in AGGREGATIONS:
        problems.append((None, f"unknown aggregation '{table.aggregation}'"))
    if table.aggregation and len(table.outputs) != 1:
        problems.append((None, f"hit policy COLLECT {table.aggregation} needs exactly one output column"))
    for column in table.inputs:
        problems.extend(_syntax(column.expression, languages.check, "input expression"))
    for rule in table.rules:
        if len(rule.inputs) != len(table.inputs) or len(rule.outputs) != len(table.outputs):
            problems.append((None, f"rule '{rule.id}' has {len(rule.inputs)} input and {len(rule.outputs)} output "
                                   f"entries; the table has {len(table.inputs)} inputs and {len(table.outputs)} outputs"))
        for entry in rule.inputs:
            problems.extend(_syntax(entry, parse_unary_tests, f"input entry of rule '{rule.id}'"))
        for entry in rule.outputs:
            if entry.text.strip():
                problems.extend(_syntax(entry, languages.check, f"output entry of rule '{rule.id}'"))
    return problems


def _syntax(text: Any, check: Any, what: str) -> list[tuple[Any, str]]:
    if text is None or not text.text.strip():
        return [(text, f"{what} is empty")] if what == "input expression" else []
    try:
        check(text) if check is languages.check else check(text.text)
    except feel.FeelSyntaxError as exc:
        return [(text, f"{what}: {exc}")]
    except Exception as exc:  # noqa: BLE001 - the sandbox's compile errors (juel/python expressions)
        return [(text, f"{what} ({text.language}) does not compile: {exc}")]
    return []
