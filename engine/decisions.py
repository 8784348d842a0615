"""Decisions as the engine uses them: business-rule tasks and direct evaluation (the API).

- `evaluate_xml(xml, key, variables)`: evaluate decision `key` of a stored DMN document (parsed
  once per document and cached), through engine/dmn;
- `task_updates(...)`: what a business-rule task writes into the process data — Camunda 7's
  `camunda:resultVariable` with `camunda:mapDecisionResult` (singleEntry, singleResult,
  collectEntries, resultList; resultList is Camunda's default), or, without a result variable,
  the outputs merged into the variables (PDCA Flow's behaviour before result variables existed);
- `evaluate_rows(...)`: the rows `POST /api/v1/decisions/{key}/evaluate` answers with, shared by
  any later Camunda-compatible evaluate endpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from engine.dmn import DecisionEvaluationError, DecisionResult, Definitions, evaluate_decision, parse_definitions

MAP_MODES = ("singleEntry", "singleResult", "collectEntries", "resultList")


@lru_cache(maxsize=256)
def _cached(digest: str, xml: bytes) -> Definitions:
    return parse_definitions(xml)


def definitions_of(xml: bytes | str) -> Definitions:
    data = xml.encode() if isinstance(xml, str) else xml
    return _cached(hashlib.sha256(data).hexdigest(), data)


def evaluate_xml(xml: bytes | str, key: str, variables: Mapping[str, Any]) -> DecisionResult:
    """Raises DecisionEvaluationError with a readable message when the decision cannot decide."""
    try:
        definitions = definitions_of(xml)
    except ValueError as exc:
        raise DecisionEvaluationError(f"the DMN document of decision '{key}' cannot be read: {exc}") from None
    return evaluate_decision(definitions, key, variables)


def map_decision_result(rows: list[dict[str, Any]], mode: str) -> Any:
    """Camunda 7's mapDecisionResult."""
    if mode == "resultList":
        return rows
    if mode == "singleResult":
        if len(rows) > 1:
            raise DecisionEvaluationError(f"mapDecisionResult singleResult: the decision gave {len(rows)} results")
        return rows[0] if rows else None
    if mode == "singleEntry":
        if len(rows) > 1:
            raise DecisionEvaluationError(f"mapDecisionResult singleEntry: the decision gave {len(rows)} results")
        if rows and len(rows[0]) != 1:
            raise DecisionEvaluationError(f"mapDecisionResult singleEntry: the result has {len(rows[0])} entries "
                                          f"({', '.join(rows[0])})")
        return next(iter(rows[0].values())) if rows else None
    if mode == "collectEntries":
        if any(len(r) != 1 for r in rows):
            raise DecisionEvaluationError("mapDecisionResult collectEntries: each result must have exactly one entry")
        return [next(iter(r.values())) for r in rows]
    raise DecisionEvaluationError(f"unknown mapDecisionResult '{mode}' (use one of {', '.join(MAP_MODES)})")


def task_updates(xml: bytes | str, key: str, variables: Mapping[str, Any], result_variable: str | None,
                 map_mode: str | None) -> dict[str, Any]:
    """The variables a business-rule task sets."""
    rows = evaluate_xml(xml, key, variables).rows
    if result_variable:
        return {result_variable: map_decision_result(rows, map_mode or "resultList")}
    if len(rows) == 1:
        return dict(rows[0])
    if not rows:
        return {}
    # several results and no result variable: each output becomes the list of its values
    return {name: [r.get(name) for r in rows] for name in rows[0]}


def evaluate_rows(xml: bytes | str, key: str, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    return evaluate_xml(xml, key, variables).rows


def decision_inputs(xml: bytes | str, key: str) -> list[dict[str, str]]:
    """What a person types to try decision KEY: each input of its table ({name, label, type}; the
    name is the input expression, usually a variable) and each input data it requires."""
    definitions = definitions_of(xml)
    decision = definitions.decision(key)
    if decision is None:
        return []
    out: list[dict[str, str]] = []
    table = decision.logic if hasattr(decision.logic, "inputs") and hasattr(decision.logic, "rules") else None
    for item in table.inputs if table else []:
        out.append({"name": item.expression.text.strip(), "label": item.label or item.expression.text.strip(),
                    "type": item.type_ref or ""})
    known = {i["name"] for i in out}
    for required in decision.required_inputs:
        name = definitions.inputs.get(required, required)
        if name not in known:
            out.append({"name": name, "label": name, "type": ""})
    return out
