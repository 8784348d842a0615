"""DMN 1.3 evaluation: FEEL, decision tables with every hit policy, decision requirement graphs.

| module | job |
|---|---|
| `feel_parser.py` | the FEEL grammar (lark); text → tree |
| `feel.py` | the FEEL interpreter: expressions and unary tests |
| `feel_ops.py`, `feel_values.py` | operators, value types |
| `feel_registry.py` | the built-in function table, calling a built-in |
| `feel_builtins.py` | built-ins: conversion, string, number, boolean, context, date |
| `feel_list_builtins.py`, `feel_range_builtins.py` | built-ins: lists; ranges and interval relations |
| `model.py` | DMN XML (1.1–1.5) → dataclasses |
| `tables.py` | decision tables and hit policies |
| `graph.py` | decision requirement graphs, business knowledge models, boxed expressions |
| `languages.py` | JUEL/Python expressions (`expressionLanguage`), run by engine/sandbox.py |
| `checks.py` | deploy-time problems of a DMN document (FEEL syntax, tables, empty decisions) |

FEEL is parsed by a grammar and interpreted over its tree; no user text is run as Python except
an expression the model itself declares JUEL or Python, and that only in the sandbox.
"""

from engine.dmn.graph import DecisionResult, evaluate_decision
from engine.dmn.model import Definitions, DmnModelError, parse_definitions, read_definitions
from engine.dmn.tables import DecisionEvaluationError

__all__ = ["DecisionEvaluationError", "DecisionResult", "Definitions", "DmnModelError", "evaluate_decision",
           "parse_definitions", "read_definitions"]
