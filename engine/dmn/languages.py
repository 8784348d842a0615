"""Expressions a DMN model writes in another language than FEEL (`expressionLanguage="juel"` or
`"python"` on an input expression, output entry or literal expression, as Camunda 7 models may):
evaluated by the sandbox (engine/sandbox.py), the one place where such text is ever run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.dmn import feel
from engine.dmn.feel_values import FeelError, to_feel, to_python
from engine.dmn.model import Text
from engine.expressions import to_python as python_source
from engine.sandbox import SandboxError, ScriptError, compile_expression, evaluate

SANDBOX_LANGUAGES = ("juel", "python")


def value_of(text: Text, scope: Mapping[str, Any]) -> Any:
    """The value of an expression in its own language (FEEL unless the model says otherwise)."""
    if text.language in SANDBOX_LANGUAGES:
        data = {k: to_python(v) for k, v in scope.items() if isinstance(k, str) and k.isidentifier()}
        try:
            return to_feel(evaluate(text.text, data))
        except (SandboxError, ScriptError) as exc:
            raise FeelError(f"{text.language} expression {text.text!r}: {exc}") from None
    return feel.evaluate(text.text, scope)


def check(text: Text) -> None:
    """Syntax only; raises FeelSyntaxError (or SandboxError for sandboxed languages)."""
    if text.language in SANDBOX_LANGUAGES:
        compile_expression(python_source(text.text))
        return
    feel.check_expression(text.text)
