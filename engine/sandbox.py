"""Sandboxed evaluation of BPMN/DMN expressions and script tasks.

SpiffWorkflow runs model code with plain ``eval``/``exec``; model files are
user content, so we compile with RestrictedPython plus our own stricter AST
checks, run with guarded attribute/item access, a small set of helpers and a
step budget, and only hand JSON-friendly results back to task data.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import sys
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import CodeType, TracebackType
from typing import Any

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
)
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.expressions import to_python
from engine.sandbox_helpers import CONTEXT_KEY, HELPERS, camunda_objects  # the helpers, listed in one place

__all__ = [
    "HELPERS",
    "SandboxEnvironment",
    "SandboxError",
    "SandboxScriptEngine",
    "SandboxSyntaxError",
    "ScriptError",
    "compile_expression",
    "compile_script",
    "evaluate",
    "execute",
]

SANDBOX_FILENAME = "<sandbox>"
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
MAX_STEPS = 200_000          # traced line/call events per evaluation
MAX_DEPTH = 100              # nested sandbox frames (lambdas, comprehensions)
MAX_SECONDS = 5.0            # wall clock, checked every 1024 steps
MAX_RANGE = 100_000
MAX_SEQUENCE = 1_000_000     # items/characters produced by * and +
MAX_INT_BITS = 100_000       # size of ints produced by ** and <<

# Names that are not helpers but that people try; a NameError on them gets a
# message saying they are deliberately unavailable.
_FORBIDDEN_BUILTINS = frozenset({
    "open", "eval", "exec", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "type", "compile", "input", "breakpoint", "__import__", "dir", "help", "object",
    "super", "memoryview", "print", "exit", "quit", "classmethod", "staticmethod", "property",
})


class SandboxError(Exception):
    """Code refused at compile time."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class SandboxSyntaxError(SandboxError, SyntaxError):
    """Unparseable code.  Also a SyntaxError because SpiffWorkflow's DMN
    engine probes entries like ``>= 3`` with ``validate`` and expects one."""


class ScriptError(Exception):
    """Failure while running sandboxed code."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _BudgetExceeded(BaseException):
    # BaseException so `except Exception:` in a script cannot swallow it
    # (bare `except:` is refused at compile time).
    pass


# --- compile time -----------------------------------------------------------

_ALLOWED_UNDERSCORE_NAMES = frozenset({"_", "_empty"})
_INTERNAL_NAMES = frozenset({"_empty", "_binop_"})
_GUARDED_BINOPS = {ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}


class _Checker(ast.NodeVisitor):
    """Refusals with messages meant for process modellers, run before
    RestrictedPython (whose own messages are terser)."""

    def __init__(self, is_script: bool) -> None:
        self.is_script = is_script

    def refuse(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", None)
        prefix = f"line {line}: " if self.is_script and line else ""
        raise SandboxError(prefix + message, line)

    def visit_Import(self, node: ast.AST) -> None:
        self.refuse(node, "imports are not allowed")

    visit_ImportFrom = visit_Import

    def visit_While(self, node: ast.While) -> None:
        self.refuse(node, "while loops are not allowed; loop over a bounded collection with for")

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.refuse(node, "def statements are not allowed; use a lambda")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.refuse(node, "class statements are not allowed")

    def visit_Global(self, node: ast.AST) -> None:
        self.refuse(node, "global/nonlocal statements are not allowed")

    visit_Nonlocal = visit_Global

    def visit_Yield(self, node: ast.AST) -> None:
        self.refuse(node, "generators (yield) are not allowed")

    visit_YieldFrom = visit_Yield

    def visit_Await(self, node: ast.AST) -> None:
        self.refuse(node, "async code is not allowed")

    visit_AsyncFor = visit_AsyncWith = visit_Await

    def visit_TryStar(self, node: ast.AST) -> None:
        self.refuse(node, "except* is not allowed")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is None:
            self.refuse(node, "bare 'except:' is not allowed; name the exception, e.g. 'except ValueError:'")
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        # break/continue in `finally` would swallow the step-budget exception.
        for stmt in node.finalbody:
            for sub in ast.walk(stmt):
                if isinstance(sub, (ast.Break, ast.Continue, ast.Return)):
                    self.refuse(sub, "break/continue inside a finally block is not allowed")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name == "__import__":
            self.refuse(node, "__import__ is not allowed")
        if name in ("print", "printed"):
            # RestrictedPython rewrites print into a collector we do not offer.
            self.refuse(node, "print() is not available; assign results to variables instead")
        if name.startswith("__"):
            self.refuse(node, f"dunder name '{name}' is not allowed")
        if name.startswith("_") and name not in _ALLOWED_UNDERSCORE_NAMES:
            self.refuse(node, f"name '{name}' is not allowed (names starting with '_' are reserved)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            kind = "dunder attribute" if node.attr.startswith("__") else "private attribute"
            self.refuse(node, f"access to {kind} '{node.attr}' is not allowed")
        if node.attr in _FRAME_ATTRIBUTES:
            self.refuse(node, f"access to attribute '{node.attr}' is not allowed")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        # f"{x:>999999999}" allocates in C where the step budget cannot see it.
        spec = node.format_spec
        if spec is not None:
            parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
            if not all(isinstance(p, ast.Constant) for p in parts) or re.search(
                r"\d{5,}", "".join(str(p.value) for p in parts if isinstance(p, ast.Constant))
            ):
                self.refuse(node, "this f-string format specification is not allowed")
        self.generic_visit(node)


class _GuardBinOps(ast.NodeTransformer):
    """Route `*`, `**`, `<<` and `+` through `_binop_` so results that would
    exhaust memory in one C call are refused before they are built."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        symbol = _GUARDED_BINOPS.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(
            func=ast.Name("_binop_", ast.Load()),
            args=[ast.Constant(symbol), node.left, node.right],
            keywords=[],
        )
        return ast.copy_location(call, node)


class _Policy(RestrictingNodeTransformer):
    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name in _INTERNAL_NAMES:  # our own injected helpers
            return
        super().check_name(node, name, allow_magic_methods)


def _compile(source: str, mode: str, limit: int) -> CodeType:
    is_script = mode == "exec"
    what = "script" if is_script else "expression"
    if len(source) > limit:
        raise SandboxError(f"{what} is too long ({len(source)} characters, limit {limit})")
    try:
        tree = ast.parse(source, SANDBOX_FILENAME, mode)
    except SyntaxError as err:
        prefix = f"line {err.lineno}: " if is_script and err.lineno else ""
        raise SandboxSyntaxError(f"{prefix}syntax error: {err.msg}", err.lineno) from None
    _Checker(is_script).visit(tree)
    tree = ast.fix_missing_locations(_GuardBinOps().visit(tree))
    compiler = compile_restricted_exec if is_script else compile_restricted_eval
    result = compiler(tree, filename=SANDBOX_FILENAME, policy=_Policy)
    if result.errors or result.code is None:
        messages = [re.sub(r"^Line (\d+): ", r"line \1: " if is_script else "", e) for e in result.errors]
        match = re.match(r"line (\d+)", messages[0]) if messages else None
        raise SandboxError("; ".join(messages) or f"{what} refused", int(match[1]) if match else None)
    return result.code


@lru_cache(maxsize=2048)
def compile_expression(source: str) -> CodeType:
    """Compile a Python expression for the sandbox or raise SandboxError."""
    return _compile(source, "eval", MAX_EXPRESSION_CHARS)


@lru_cache(maxsize=1024)
def compile_script(source: str) -> CodeType:
    """Compile a Python script for the sandbox or raise SandboxError."""
    return _compile(source, "exec", MAX_SCRIPT_CHARS)


# --- runtime guards ---------------------------------------------------------

# Non-underscore attributes that still lead out of the sandbox (frames, MRO,
# format strings that can walk `{0.__class__}`).
_FRAME_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "ag_frame", "ag_code",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "tb_frame", "tb_next",
})
_BLOCKED_ATTRIBUTES = _FRAME_ATTRIBUTES | {"mro", "format", "format_map", "with_traceback"}


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
_GUARDS: dict[str, Any] = {
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


# --- running ----------------------------------------------------------------

class _Budget:
    """sys.settrace hook counting line/call events of sandbox frames only."""

    def __init__(self) -> None:
        self.steps = 0
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _BudgetExceeded(f"step limit of {MAX_STEPS} exceeded; is there an endless loop?")
        if not self.steps & 0x3FF and time.monotonic() > self.deadline:
            raise _BudgetExceeded(f"time limit of {MAX_SECONDS:g}s exceeded")

    def on_call(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != SANDBOX_FILENAME:
            return None  # helpers and guards run untraced
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _BudgetExceeded(f"calls nested too deeply (limit {MAX_DEPTH}); is there endless recursion?")
        self.tick()
        return self.on_local

    def on_local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "return":
            self.depth -= 1
        elif event == "line":
            self.tick()
        return self.on_local


def _sandbox_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SANDBOX_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _run(code: CodeType, namespace: dict[str, Any], is_script: bool) -> Any:
    budget = _Budget()
    previous = sys.gettrace()
    sys.settrace(budget.on_call)
    try:
        return eval(code, namespace)
    except (Exception, _BudgetExceeded) as err:
        line = _sandbox_line(err.__traceback__)
        if isinstance(err, (ScriptError, _BudgetExceeded)):
            message = str(err)
        elif isinstance(err, NameError) and err.name in _FORBIDDEN_BUILTINS:
            message = f"'{err.name}' is not available in the sandbox"
        else:
            message = f"{err.__class__.__name__}: {err}"
        if is_script and line:
            message += f" (line {line})"
        raise ScriptError(message, line) from err
    finally:
        sys.settrace(previous)


def _namespace(data: Mapping[str, Any], external_context: Mapping[str, Any] | None,
               script: bool = False) -> dict[str, Any]:
    # Same precedence as SpiffWorkflow: external context, then task data.
    namespace: dict[str, Any] = dict(external_context or {})
    context = namespace.pop(CONTEXT_KEY, None)
    if context is not None:
        # Camunda's `execution`/`task` built from plain data; a script's setVariable is a variable
        # of the script (written back like an assignment), an expression's goes into the data.
        namespace.update(camunda_objects(context, namespace if script else data))  # type: ignore[arg-type]
    namespace.update(data)
    namespace.update(_GUARDS)
    return namespace


def _json_friendly(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_friendly(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _json_friendly(v, depth + 1) for k, v in value.items())
    return False


def evaluate(source: str, data: Mapping[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate BPMN/DMN expression text (Python, ``${JUEL}`` or ISO 8601)
    over ``data``; raises SandboxError or ScriptError."""
    code = compile_expression(to_python(source))
    return _run(code, _namespace(data, external_context), is_script=False)


def execute(source: str, data: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> None:
    """Run a script over ``data``; new or rebound JSON-friendly top-level
    variables are written back, deleted ones removed (as SpiffWorkflow's own
    environment does by exec'ing directly in task data)."""
    code = compile_script(source)
    external = external_context or {}
    namespace = _namespace(data, external, script=True)
    _run(code, namespace, is_script=True)
    for key, value in namespace.items():
        if key in _GUARDS or (key in external and key not in data):
            continue
        if key in data and data[key] is value:
            continue
        # Lambdas, iterators, datetimes etc. are working values, not data.
        if _json_friendly(value):
            data[key] = value
    for key in [k for k in data if k not in namespace]:
        del data[key]


# --- SpiffWorkflow integration ----------------------------------------------

class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Script environment running everything through the sandbox; helpers
    come from HELPERS only, so no environment globals are accepted."""

    def __init__(self) -> None:
        super().__init__({})

    def evaluate(self, expression: str, context: Mapping[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        return evaluate(expression, context, external_context)

    def execute(self, script: str, context: dict[str, Any],
                external_context: Mapping[str, Any] | None = None) -> bool:
        execute(script, context, external_context)
        return True


class SandboxScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose evaluation and validation use the sandbox."""

    def __init__(self, environment: BasePythonScriptEngineEnvironment | None = None,
                 context_of: Callable[[Any], dict[str, Any]] | None = None) -> None:
        super().__init__(environment or SandboxEnvironment())
        # The plain data Camunda's `execution` built-in is made of (instance id, business key,
        # activity), taken from the task by the runtime (engine/runtime/camunda.py).
        self.context_of = context_of

    def _with_context(self, task: Any, external_context: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if self.context_of is None or task is None:
            return external_context
        merged = dict(external_context or {})
        merged.setdefault(CONTEXT_KEY, self.context_of(task))
        return merged

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> Any:
        return super().execute(task, script, self._with_context(task, external_context))

    def validate(self, expression: str) -> None:
        # Raises SandboxSyntaxError (a SyntaxError) for unparseable text, which
        # the DMN engine relies on to detect entries such as ">= 3".
        compile_expression(to_python(expression))

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, self._with_context(task, external_context))
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {err}",
                task=task, exception=_cause(err), line_number=getattr(err, "line", None),
            ) from err

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        if not isinstance(err, (SandboxError, ScriptError)):
            return super().create_task_exec_exception(task, script, err)
        lines = script.splitlines()
        error_line = lines[err.line - 1] if err.line and err.line <= len(lines) else ""
        return WorkflowTaskException(
            str(err), task=task, exception=_cause(err), line_number=err.line, error_line=error_line,
        )


def _cause(err: Exception) -> Exception:
    """The original exception (e.g. NameError) so WorkflowTaskException reports
    its type and can add did-you-mean hints."""
    cause = err.__cause__
    return cause if isinstance(cause, Exception) else err
