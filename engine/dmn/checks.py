"""Deploy-time problems of a DMN document: FEEL that does not parse, tables whose rules do not fit
their columns, decisions with nothing to evaluate. Each problem names its line and owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.dmn import feel, languages
from engine.dmn.model import (
    BoxedContext,
    BoxedList,
    Conditional,
    DecisionTable,
    Definitions,
    FunctionDefinition,
    Invocation,
    Iteration,
    LiteralExpression,
    Relation,
)
from engine.dmn.tables import check_table


@dataclass(frozen=True)
class DmnProblem:
    line: int | None
    element: str
    message: str


def problems_of(definitions: Definitions) -> list[DmnProblem]:
    out: list[DmnProblem] = []
    for decision in definitions.decisions.values():
        owner = f'decision {decision.id} "{decision.name}"' if decision.name != decision.id else f"decision {decision.id}"
        if decision.logic is None:
            out.append(DmnProblem(decision.line, owner, "nothing to evaluate: the decision needs a decision table, "
                                                        "a literal expression or another boxed expression"))
        _walk(decision.logic, owner, decision.line, out)
    for bkm in definitions.knowledge.values():
        _walk(bkm.logic, f"businessKnowledgeModel {bkm.id}", None, out)
    return out


def _walk(logic: Any, owner: str, line: int | None, out: list[DmnProblem]) -> None:
    if isinstance(logic, DecisionTable):
        rule_ids = {rule.id for rule in logic.rules}
        for text, message in check_table(logic):
            where = f"rule {text.element}" if text is not None and text.element in rule_ids else owner
            out.append(DmnProblem(text.line if text is not None else logic.line, where, message))
    elif isinstance(logic, LiteralExpression):
        try:
            languages.check(logic.text)
        except feel.FeelSyntaxError as exc:
            out.append(DmnProblem(logic.text.line, owner, f"literal expression: {exc}"))
        except Exception as exc:  # noqa: BLE001 - the sandbox's compile errors (juel/python expressions)
            out.append(DmnProblem(logic.text.line, owner, f"literal expression ({logic.text.language}) "
                                                           f"does not compile: {exc}"))
    elif isinstance(logic, BoxedContext):
        for _, expr in logic.entries:
            _walk(expr, owner, line, out)
    elif isinstance(logic, BoxedList):
        for item in logic.items:
            _walk(item, owner, line, out)
    elif isinstance(logic, Relation):
        for row in logic.rows:
            for cell in row:
                _walk(cell, owner, line, out)
    elif isinstance(logic, FunctionDefinition):
        if logic.kind not in ("FEEL", ""):
            out.append(DmnProblem(line, owner, f"{logic.kind} functions cannot run here; write the function in FEEL"))
        _walk(logic.body, owner, line, out)
    elif isinstance(logic, Conditional):
        for part in (logic.condition, logic.then, logic.otherwise):
            _walk(part, owner, line, out)
    elif isinstance(logic, Iteration):
        _walk(logic.source, owner, line, out)
        _walk(logic.body, owner, line, out)
    elif isinstance(logic, Invocation):
        for _, expr in logic.bindings:
            _walk(expr, owner, line, out)
