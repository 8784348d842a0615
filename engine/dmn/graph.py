"""Decision requirement graphs: a decision's required decisions are evaluated first, and their
results are visible to it by decision name (and, as in Camunda 7, by their output names);
business knowledge models are visible as functions by their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.dmn import feel
from engine.dmn.feel_values import FeelFunction, to_feel, to_python
from engine.dmn.model import DecisionTable, Definitions, Invocation, KnowledgeModel, LiteralExpression
from engine.dmn.tables import DecisionEvaluationError, evaluate_table


@dataclass
class DecisionResult:
    """`rows`: one {output name: value} per matched rule after the hit policy (plain Python values);
    `value`: the decision's FEEL value (what a decision that requires this one sees)."""
    decision_id: str
    rows: list[dict[str, Any]]
    value: Any
    matched_rules: list[str]


def evaluate_decision(definitions: Definitions, key: str, variables: Mapping[str, Any]) -> DecisionResult:
    """Evaluate decision `key` (id or name) with process data `variables` (plain JSON-like values)."""
    decision = definitions.decision(key)
    if decision is None:
        raise DecisionEvaluationError(f"decision '{key}' is not in the DMN document")
    scope = {k: to_feel(v) for k, v in variables.items()}
    return _Evaluator(definitions, scope).decide(decision.id, [])


class _Evaluator:
    def __init__(self, definitions: Definitions, inputs: dict[str, Any]) -> None:
        self.definitions = definitions
        self.inputs = inputs
        self.done: dict[str, DecisionResult] = {}

    def decide(self, decision_id: str, path: list[str]) -> DecisionResult:
        if decision_id in self.done:
            return self.done[decision_id]
        if decision_id in path:
            raise DecisionEvaluationError("decision requirements form a cycle: " + " -> ".join(path + [decision_id]))
        decision = self.definitions.decisions.get(decision_id)
        if decision is None:
            raise DecisionEvaluationError(f"required decision '{decision_id}' is not in the DMN document")
        scope = dict(self.inputs)
        for bkm_id in decision.required_knowledge:
            bkm = self.definitions.knowledge.get(bkm_id)
            if bkm is None:
                raise DecisionEvaluationError(f"business knowledge model '{bkm_id}' is not in the DMN document")
            scope[bkm.name] = self._function(bkm)
        for required in decision.required_decisions:
            result = self.decide(required, path + [decision_id])
            required_decision = self.definitions.decisions[required]
            if len(result.rows) == 1:  # Camunda 7: a required decision's outputs are variables of its user
                scope.update({k: to_feel(v) for k, v in result.rows[0].items()})
            scope[required_decision.name] = result.value
        try:
            result = self._logic(decision.id, decision.name, decision.logic, scope)
        except DecisionEvaluationError as exc:
            raise DecisionEvaluationError(f"decision '{decision.name or decision.id}': {exc}") from None
        self.done[decision_id] = result
        return result

    def _logic(self, decision_id: str, name: str, logic: Any, scope: dict[str, Any]) -> DecisionResult:
        if isinstance(logic, DecisionTable):
            table = evaluate_table(logic, scope)
            value = table.value(logic.hit_policy, len(logic.outputs) == 1)
            rows = [{k: to_python(v) for k, v in row.items()} for row in table.rows]
            if len(logic.outputs) == 1 and not logic.outputs[0].name:  # an unnamed output takes the decision's name
                rows = [{name: next(iter(r.values()))} for r in rows]
            return DecisionResult(decision_id, rows, value, table.matched)
        if isinstance(logic, LiteralExpression):
            try:
                value = feel.evaluate(logic.text.text, scope)
            except (feel.FeelError, feel.FeelSyntaxError) as exc:
                raise DecisionEvaluationError(f"literal expression: {exc}") from None
            return DecisionResult(decision_id, [{name: to_python(value)}], value, [])
        if isinstance(logic, Invocation):
            fn = scope.get(logic.target)
            if not isinstance(fn, FeelFunction):
                raise DecisionEvaluationError(f"invocation of '{logic.target}': no such business knowledge model")
            named = {}
            for param, text in logic.bindings:
                try:
                    named[param] = feel.evaluate(text.text, scope) if text else None
                except (feel.FeelError, feel.FeelSyntaxError) as exc:
                    raise DecisionEvaluationError(f"binding '{param}': {exc}") from None
            value = fn.call(*[named.get(p) for p in fn.params or ()])
            return DecisionResult(decision_id, [{name: to_python(value)}], value, [])
        raise DecisionEvaluationError("the decision has no decision table, literal expression or invocation")

    def _function(self, bkm: KnowledgeModel) -> FeelFunction:
        def call(*args: Any) -> Any:
            scope = dict(self.inputs)
            scope.update(zip(bkm.parameters, args, strict=False))
            if isinstance(bkm.logic, LiteralExpression):
                return feel.evaluate(bkm.logic.text.text, scope)
            if isinstance(bkm.logic, DecisionTable):
                return evaluate_table(bkm.logic, scope).value(bkm.logic.hit_policy, len(bkm.logic.outputs) == 1)
            raise DecisionEvaluationError(f"business knowledge model '{bkm.name}' has no logic to call")
        return FeelFunction(bkm.name, call, tuple(bkm.parameters))
