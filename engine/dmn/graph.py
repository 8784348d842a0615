"""Decision requirement graphs: a decision's required decisions are evaluated first, and their
results are visible to it by decision name (and, as in Camunda 7, by their output names);
business knowledge models are visible as functions by their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.dmn import feel, languages
from engine.dmn.feel_values import FeelFunction, to_feel, to_python
from engine.dmn.model import (
    BoxedContext,
    BoxedList,
    Conditional,
    DecisionTable,
    Definitions,
    FunctionDefinition,
    Invocation,
    Iteration,
    KnowledgeModel,
    LiteralExpression,
    Relation,
)
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
    try:
        scope = {k: to_feel(v) for k, v in variables.items()}
        return _Evaluator(definitions, scope).decide(decision.id, [])
    except feel.FeelError as exc:
        raise DecisionEvaluationError(f"decision '{decision.name or decision.id}': {exc}") from None
    except RecursionError:
        raise DecisionEvaluationError(f"decision '{decision.name or decision.id}': the data or the "
                                      "expressions nest too deeply") from None


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
        if logic is None:
            raise DecisionEvaluationError("the decision has no decision table, literal expression or other "
                                          "expression to evaluate")
        value = self.value(logic, scope)
        return DecisionResult(decision_id, [{name: to_python(value)}], value, [])

    def value(self, logic: Any, scope: dict[str, Any]) -> Any:
        """The FEEL value of a boxed expression."""
        if logic is None:
            return None
        if isinstance(logic, LiteralExpression):
            try:
                return languages.value_of(logic.text, scope)
            except feel.FeelSyntaxError as exc:
                raise DecisionEvaluationError(f"literal expression: {exc}") from None
        if isinstance(logic, DecisionTable):
            return evaluate_table(logic, scope).value(logic.hit_policy, len(logic.outputs) == 1)
        if isinstance(logic, BoxedContext):
            out: dict[str, Any] = {}
            inner = dict(scope)
            for key, expr in logic.entries:
                result = self.value(expr, inner)
                if key is None:
                    return result
                out[key] = inner[key] = result
            return out
        if isinstance(logic, BoxedList):
            return [self.value(item, scope) for item in logic.items]
        if isinstance(logic, Relation):
            return [dict(zip(logic.columns, (self.value(cell, scope) for cell in row), strict=False))
                    for row in logic.rows]
        if isinstance(logic, FunctionDefinition):
            if logic.kind not in ("FEEL", ""):
                raise DecisionEvaluationError(f"{logic.kind} functions cannot run here; write the function in FEEL")
            return self._closure("function", logic.parameters, logic.body, scope)
        if isinstance(logic, Conditional):
            branch = logic.then if self.value(logic.condition, scope) is True else logic.otherwise
            return self.value(branch, scope)
        if isinstance(logic, Iteration):
            return self._iterate(logic, scope)
        if isinstance(logic, Invocation):
            fn = scope.get(logic.target)
            if fn is None:
                fn = feel.BUILTINS.get(logic.target)
            if not isinstance(fn, FeelFunction):
                raise DecisionEvaluationError(f"invocation of '{logic.target}': no such function")
            named = {param: self.value(expr, scope) for param, expr in logic.bindings}
            return feel.call_function(fn, [], named) if fn.params else fn.call()
        raise DecisionEvaluationError(f"cannot evaluate {type(logic).__name__}")

    def _iterate(self, logic: Iteration, scope: dict[str, Any]) -> Any:
        source = self.value(logic.source, scope)
        items = source if isinstance(source, list) else [source]
        if logic.kind == "filter":
            kept = []
            for item in items:
                frame = dict(scope)
                if isinstance(item, dict):
                    frame.update(item)
                frame["item"] = item
                if self.value(logic.body, frame) is True:
                    kept.append(item)
            return kept
        results = [self.value(logic.body, {**scope, logic.variable: item}) for item in items]
        if logic.kind == "for":
            return results
        if logic.kind == "some":
            return True if True in results else (False if all(r is False for r in results) else None)
        return False if False in results else (True if all(r is True for r in results) else None)

    def _closure(self, name: str, params: list[str], body: Any, scope: dict[str, Any]) -> FeelFunction:
        def call(*args: Any) -> Any:
            return self.value(body, {**scope, **dict(zip(params, args, strict=False))})
        return FeelFunction(name, call, tuple(params))

    def _function(self, bkm: KnowledgeModel) -> FeelFunction:
        if isinstance(bkm.logic, FunctionDefinition):  # a BKM whose body is itself a function definition
            return self._closure(bkm.name, bkm.parameters, bkm.logic, dict(self.inputs))
        return self._closure(bkm.name, bkm.parameters, bkm.logic, dict(self.inputs))
