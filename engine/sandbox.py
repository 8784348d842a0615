"""Sandboxed evaluation of BPMN/DMN expressions and script tasks.

SpiffWorkflow runs model code with plain ``eval``/``exec``; model files are
user content, so we compile with RestrictedPython plus our own stricter AST
checks, run with guarded attribute/item access, a small set of helpers and a
step budget, and only hand JSON-friendly results back to task data.

Where code runs. Scripts, and expressions that loop, call functions or repeat
values, run in a worker process (engine/sandbox_worker.py) where hard limits
stop them even inside one long C call: wall-clock time (the worker is killed
and replaced) and memory allocated in total (RLIMIT_AS). Expressions made only
of names, constants, comparisons, boolean logic, attribute/item access,
``+ - / // %`` and calls of a few cheap helpers (see ``_INLINE_NODES``) do a
bounded amount of work on bounded data and run in the calling process: that is
nearly every gateway condition and DMN cell, and it saves a round trip each.

What is stored. A script's variables are measured before they leave the
worker, and the task data as a whole afterwards, as the serializer will write
them (a list repeated by reference counts once per use): over
``PDCAFLOW_SANDBOX_MAX_DATA_BYTES`` the script fails, so nothing oversized
reaches the runtime's save. Every failure is a ScriptError naming the limit
(the runtime makes it an incident).

Contract for the namespace (helpers of engine/sandbox_helpers.py, and the
``external_context`` objects callers pass, e.g. ``execution`` and ``task``):
- the namespace is built *inside the worker* from pickled inputs, so every
  external-context value must be picklable (plain values, or objects of
  classes defined in engine/sandbox_helpers.py, importable by the worker);
- external-context entries whose key starts with ``_`` (no code can name
  them) are the engine's plain data the namespace builds objects from (e.g.
  Camunda's ``execution``/``task``): always sent, and, being dicts, updated in
  place on the caller's side after the run, so what those objects recorded
  there (a task listener's assignee) is seen by the caller; a run that uses
  such an object gets all task data, and an expression's writes to the data
  come back too (``execution.setVariable`` in ``${...}``);
- otherwise only the variables the code mentions by name are sent, unless the
  code mentions an external object that is a ``sandbox_helpers.DataBound``: then
  all task data is sent and the worker calls ``obj.bind(variables)`` (the
  script's namespace; an expression's data) before running, so ``execution.getVariable(name)`` / ``setVariable(name, value)``
  read and write the script's variables; what a script sets that way is
  returned like any assignment (JSON-friendly values only), and what the
  object recorded in its own attributes is copied back onto the caller's
  object (``DataBound.absorb``), e.g. an assignee a task listener set;
- the worker's ``engine.clock`` is set to the caller's, so ``now()`` agrees;
- an expression's result comes back by pickle: it must be picklable.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
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

from engine import clock, sandbox_worker, settings
from engine.expressions import to_python
from engine.sandbox_helpers import CONTEXT_KEY, HELPERS, DataBound, camunda_objects  # the helpers, listed in one place

__all__ = [
    "HELPERS",
    "Limits",
    "PrintedOutput",
    "SandboxEnvironment",
    "SandboxError",
    "SandboxScriptEngine",
    "SandboxSyntaxError",
    "ScriptError",
    "captured_output",
    "check_data_size",
    "compile_expression",
    "compile_script",
    "current_limits",
    "evaluate",
    "execute",
]

SANDBOX_FILENAME = "<sandbox>"
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 100              # nested sandbox frames (lambdas, comprehensions)
_MAX_MESSAGE = 1_000         # characters of an error message kept
MAX_RANGE = 100_000
MAX_SEQUENCE = 1_000_000     # items/characters produced by * and +
MAX_INT_BITS = 100_000       # size of ints produced by ** and <<

# Names that are not helpers but that people try; a NameError on them gets a
# message saying they are deliberately unavailable.
_FORBIDDEN_BUILTINS = frozenset({
    "open", "eval", "exec", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "type", "compile", "input", "breakpoint", "__import__", "dir", "help", "object",
    "super", "memoryview", "exit", "quit", "classmethod", "staticmethod", "property",
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
_INTERNAL_NAMES = frozenset({"_empty", "_binop_", "_print", "_print_"})
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
        if name == "printed":
            self.refuse(node, "'printed' is not available; print() writes to the instance's log")
        if name == "print" and not self.is_script:
            self.refuse(node, "print() is only available in scripts (it writes to the instance's log)")
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


@dataclass(frozen=True)
class _Compiled:
    code: CodeType
    names: frozenset[str]  # every name the code mentions: the only variables it can read or write
    inline: bool  # an expression cheap enough to run in this process (see _inline)
    calls: frozenset[str]  # names it calls (inline expressions: helpers that data must not shadow)
    free: frozenset[str]  # names it reads but never binds (a variable, a helper, or an engine object)


# An expression built only from these nodes does a bounded amount of work on bounded data: no loops,
# no functions, no repetition; calls only of the helpers below. It runs in the calling process, which
# saves the round trip to a worker for nearly every gateway condition and DMN cell.
_INLINE_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn, ast.Name,
    ast.Load, ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict, ast.IfExp,
    ast.BinOp, ast.Add, ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Call,
)
_INLINE_CALLS = frozenset({"_empty", "len", "abs", "bool", "now", "today"})


def _inline(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if not isinstance(node, _INLINE_NODES):
            return False
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in _INLINE_CALLS or node.keywords
            or any(isinstance(a, ast.Starred) for a in node.args)
        ):
            return False
    return True


def _compile(source: str, mode: str, limit: int) -> _Compiled:
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
    names = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            args = node.args
            bound.update(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
                         if a is not None)
    calls = frozenset(n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
    inline = not is_script and _inline(tree)
    tree = ast.fix_missing_locations(_GuardBinOps().visit(tree))
    compiler = compile_restricted_exec if is_script else compile_restricted_eval
    result = compiler(tree, filename=SANDBOX_FILENAME, policy=_Policy)
    if result.errors or result.code is None:
        messages = [re.sub(r"^Line (\d+): ", r"line \1: " if is_script else "", e) for e in result.errors]
        match = re.match(r"line (\d+)", messages[0]) if messages else None
        raise SandboxError("; ".join(messages) or f"{what} refused", int(match[1]) if match else None)
    return _Compiled(result.code, names, inline, calls, names - bound)


@lru_cache(maxsize=2048)
def _expression(source: str) -> _Compiled:
    return _compile(source, "eval", MAX_EXPRESSION_CHARS)


@lru_cache(maxsize=1024)
def _script(source: str) -> _Compiled:
    return _compile(source, "exec", MAX_SCRIPT_CHARS)


def compile_expression(source: str) -> CodeType:
    """Compile a Python expression for the sandbox or raise SandboxError."""
    return _expression(source).code


def compile_script(source: str) -> CodeType:
    """Compile a Python script for the sandbox or raise SandboxError."""
    return _script(source).code


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


# --- limits -----------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """The limits of one evaluation (engine/settings.py, PDCAFLOW_SANDBOX_*); sent with each request."""

    time: float = 2.0
    memory_mb: int = 256
    steps: int = 200_000
    data_bytes: int = 1_000_000
    log_chars: int = 10_000


def current_limits() -> Limits:
    s = settings.current()
    return Limits(s.sandbox_time_limit, s.sandbox_memory_mb, s.sandbox_max_steps, s.sandbox_max_data_bytes,
                  s.sandbox_max_log_chars)


def _time_exceeded(limits: Limits) -> str:
    return f"time limit of {limits.time:g}s exceeded (PDCAFLOW_SANDBOX_TIME_LIMIT)"


# --- running ----------------------------------------------------------------

class _Budget:
    """sys.settrace hook counting line/call events of sandbox frames only."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.depth = 0
        self.deadline = time.monotonic() + limits.time

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise _BudgetExceeded(f"step limit of {self.limits.steps} exceeded (PDCAFLOW_SANDBOX_MAX_STEPS); "
                                  "is there an endless loop?")
        if not self.steps & 0x3FF and time.monotonic() > self.deadline:
            raise _BudgetExceeded(_time_exceeded(self.limits))

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


def _run(code: CodeType, namespace: dict[str, Any], is_script: bool, limits: Limits | None) -> Any:
    """Run `code`; with `limits`, under the step/time budget (in a worker), else untraced (inline)."""
    budget = _Budget(limits) if limits is not None else None
    previous = sys.gettrace()
    if budget is not None:
        sys.settrace(budget.on_call)
    try:
        return eval(code, namespace)
    except (Exception, _BudgetExceeded) as err:
        if budget is not None:
            sys.settrace(previous)  # so the rest of this handler is not charged to the script
        line = _sandbox_line(err.__traceback__)
        if isinstance(err, (ScriptError, _BudgetExceeded)):
            message = str(err)
        elif isinstance(err, MemoryError):
            memory = limits.memory_mb if limits is not None else "?"
            message = f"memory limit of {memory} MB exceeded (PDCAFLOW_SANDBOX_MEMORY_MB)"
        elif isinstance(err, NameError) and err.name in _FORBIDDEN_BUILTINS:
            message = f"'{err.name}' is not available in the sandbox"
        else:
            message = f"{err.__class__.__name__}: {err}"
        if len(message) > _MAX_MESSAGE:  # raise ValueError('x' * 10**6) must not become a huge incident
            message = message[:_MAX_MESSAGE] + "…"
        if is_script and line:
            message += f" (line {line})"
        raise ScriptError(message, line) from err
    finally:
        if budget is not None:
            sys.settrace(previous)


class _Printer:
    """What print() in a script writes to: text kept up to the log limit, for the instance's log."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.room = limit
        self.truncated = False

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", file: Any = None,
                    flush: Any = False) -> None:
        if file is not None:
            raise ScriptError("print(file=...) is not available; printed text goes to the instance's log")
        if self.room <= 0:
            self.truncated = True
            return
        sep = " " if sep is None else str(sep)
        text = sep.join(str(o)[: self.room + 1] for o in objects) + ("\n" if end is None else str(end))
        if len(text) > self.room:
            text, self.truncated = text[: self.room], True
        self.parts.append(text)
        self.room -= len(text)

    def text(self) -> str:
        return "".join(self.parts) + ("\n[output truncated]" if self.truncated else "")


def _namespace(data: Mapping[str, Any], external_context: Mapping[str, Any] | None,
               script: bool = False, limits: Limits | None = None) -> dict[str, Any]:
    # Same precedence as SpiffWorkflow: external context, then task data.
    namespace: dict[str, Any] = dict(external_context or {})
    context = namespace.pop(CONTEXT_KEY, None)
    if context is not None:
        # Camunda's `execution`/`task` built from plain data; a script's setVariable is a variable
        # of the script (written back like an assignment), an expression's goes into the data.
        namespace.update(camunda_objects(context, namespace if script else data))  # type: ignore[arg-type]
    namespace.update(data)
    namespace.update(_GUARDS)
    if limits is not None:
        namespace["_print_"] = lambda _getattr: _Printer(limits.log_chars)
    return namespace


# --- measuring what would be stored ----------------------------------------

_MAX_NESTING = 64
_MAX_INT_DIGITS = 4300  # what Python (and so the JSON encoder) converts to text at most


class _TooLarge(Exception):
    pass


class _Meter:
    """Approximate JSON size of values, shared references counted each time they occur (as the
    serializer will write them), stopping as soon as the budget is spent."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _TooLarge

    def storable(self, value: Any, strict: bool, depth: int = 0) -> bool:
        """Charge `value`'s size; False when it is not plain JSON data (strict: such values are
        working values, not data; else they count as small and are not looked into)."""
        if value is None or isinstance(value, (bool, float)):
            self.take(8)
            return True
        if isinstance(value, int):
            digits = value.bit_length() * 0.302
            if digits > _MAX_INT_DIGITS:
                raise _TooLarge(f"an integer of more than {_MAX_INT_DIGITS} digits cannot be stored")
            self.take(int(digits) + 2)
            return True
        if isinstance(value, str):
            self.take(len(value) + 3)
            return True
        if depth > _MAX_NESTING:
            if strict:
                return False
            raise _TooLarge(f"values nested more than {_MAX_NESTING} levels deep cannot be stored")
        if isinstance(value, (list, tuple)) or (not strict and isinstance(value, (set, frozenset))):
            self.take(len(value) + 2)
            for item in value:
                if not self.storable(item, strict, depth + 1):
                    return False  # only in strict mode: the whole value is a working value then
            return True
        if isinstance(value, dict):
            self.take(2 * len(value) + 2)
            for k, v in value.items():
                if strict and not isinstance(k, (str, int)):
                    return False
                self.storable(k if isinstance(k, (str, int)) else str(k), strict, depth + 1)
                if not self.storable(v, strict, depth + 1):
                    return False
            return True
        self.take(16)
        return not strict


def _too_large(limits: Limits, what: str, where: str, exc: _TooLarge) -> ScriptError:
    if exc.args:
        return ScriptError(f"{what} cannot be stored ({where}): {exc.args[0]}")
    return ScriptError(
        f"{what} too large: it would take more than {limits.data_bytes} bytes when stored, reached {where} "
        "(limit PDCAFLOW_SANDBOX_MAX_DATA_BYTES; a list repeated by reference counts once per use)")


def check_data_size(data: Mapping[str, Any], limits: Limits | None = None) -> None:
    """Raise ScriptError when `data` would serialize to more than the data limit."""
    limits = limits or current_limits()
    meter = _Meter(limits.data_bytes)
    for key, value in data.items():
        try:
            meter.take(len(str(key)) + 4)
            meter.storable(value, strict=False)
        except _TooLarge as exc:
            raise _too_large(limits, "task data", f"at variable '{key}'", exc) from None


# --- the worker's side --------------------------------------------------------

@dataclass(frozen=True)
class _Request:
    kind: str  # "eval" or "exec"
    source: str  # Python (JUEL already translated)
    data: dict[str, Any]  # the variables the code mentions (all of them when `full`)
    external: dict[str, Any]
    now: datetime  # the engine clock of the caller, so now()/today() agree with it
    limits: Limits
    full: bool = False  # all task data was sent: an expression's writes to it come back too


@dataclass
class _Reply:
    ok: bool
    value: Any = None
    changed: dict[str, Any] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    printed: str = ""
    message: str = ""
    line: int | None = None
    cause: tuple[str, str] | None = None  # the original exception's class name and message
    bound: dict[str, Any] = field(default_factory=dict)  # DataBound objects after the run (absorbed by the caller)
    engine_state: dict[str, Any] = field(default_factory=dict)  # the '_' entries of the external context, after
    retire: bool = False  # the worker is not to be reused (it ran out of memory)


def _set_clock(now: datetime) -> None:
    clock.reset()
    clock.advance(now - clock.now())


def handle(request: _Request) -> _Reply:
    """Run one request inside a worker process (engine/sandbox_worker.py)."""
    _set_clock(request.now)
    limits = request.limits
    is_script = request.kind == "exec"
    compiled = _script(request.source) if is_script else _expression(request.source)
    namespace = _namespace(request.data, request.external, script=is_script, limits=limits)
    data_keys = set(request.data)
    for value in request.external.values():
        if isinstance(value, DataBound):  # a script's writes are its variables; an expression's go to data
            value.bind(namespace if is_script else request.data)
    try:
        value = _run(compiled.code, namespace, is_script, limits)
    except ScriptError as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        return _Reply(False, message=str(err), line=err.line, printed=_printed(namespace),
                      cause=(cause.__class__.__name__, str(cause)[:_MAX_MESSAGE]),
                      retire=isinstance(cause, MemoryError))
    meter = _Meter(limits.data_bytes)
    bound = {k: v for k, v in request.external.items() if isinstance(v, DataBound)}
    engine_state = {k: v for k, v in request.external.items() if k.startswith("_")}
    for name, obj in [*bound.items(), *engine_state.items()]:
        try:
            meter.storable(obj.__getstate__() if isinstance(obj, DataBound) else obj, strict=False)
        except _TooLarge as exc:
            return _failure(_too_large(limits, f"'{name}'", "while measuring it", exc))
    if not is_script:
        try:
            meter.storable(value, strict=False)
        except _TooLarge as exc:
            return _failure(_too_large(limits, "the expression's result", "while measuring it", exc))
        reply = _Reply(True, value=value, bound=bound, engine_state=engine_state)
        if request.full:  # an engine object may have written variables (execution.setVariable in ${...})
            reply.deleted = tuple(data_keys - set(request.data))
            for key, value in request.data.items():
                try:
                    if meter.storable(value, strict=True):
                        reply.changed[key] = value
                except _TooLarge as exc:
                    return _failure(_too_large(limits, "task data", f"at variable '{key}'", exc))
        return reply
    changed: dict[str, Any] = {}
    for key, value in namespace.items():
        if (key in _GUARDS or key in _INTERNAL_NAMES or key.startswith("_")
                or (key in request.external and key not in request.data)):
            continue
        try:
            if meter.storable(value, strict=True):  # lambdas, iterators, datetimes are working values
                changed[key] = value
        except _TooLarge as exc:
            return _failure(_too_large(limits, "task data", f"at variable '{key}'", exc), _printed(namespace))
    deleted = tuple(k for k in request.data if k not in namespace)
    return _Reply(True, changed=changed, deleted=deleted, printed=_printed(namespace), bound=bound,
                  engine_state=engine_state)


def _printed(namespace: dict[str, Any]) -> str:
    printer = namespace.get("_print")
    return printer.text() if isinstance(printer, _Printer) else ""


def _failure(err: ScriptError, printed: str = "") -> _Reply:
    return _Reply(False, message=str(err), line=err.line, printed=printed, cause=("ScriptError", str(err)))


def memory_exceeded(limits: Limits) -> _Reply:
    """The reply when memory ran out outside the code itself (building the namespace or the reply)."""
    return _failure(ScriptError(f"memory limit of {limits.memory_mb} MB exceeded (PDCAFLOW_SANDBOX_MEMORY_MB)"))


def internal_error(exc: Exception) -> _Reply:
    reply = _failure(ScriptError(f"internal sandbox error: {exc.__class__.__name__}: {exc}"))
    reply.retire = True
    return reply


def unpicklable(exc: Exception) -> _Reply:
    return _failure(ScriptError(f"the result cannot be handed back: {exc}"))


# --- the caller's side --------------------------------------------------------

@dataclass(frozen=True)
class PrintedOutput:
    """Text a script printed, for the instance's log (see captured_output)."""

    task_id: str | None
    element: str | None
    text: str


_OUTPUT: ContextVar[list[PrintedOutput] | None] = ContextVar("sandbox_output", default=None)
_TASK: ContextVar[tuple[str, str] | None] = ContextVar("sandbox_task", default=None)


@contextmanager
def captured_output() -> Iterator[list[PrintedOutput]]:
    """Collect what scripts run in this block print (the runtime audits it as the instance's log)."""
    collected: list[PrintedOutput] = []
    token = _OUTPUT.set(collected)
    try:
        yield collected
    finally:
        _OUTPUT.reset(token)


def _emit(text: str) -> None:
    sink = _OUTPUT.get()
    if text and sink is not None:
        task = _TASK.get()
        sink.append(PrintedOutput(task[0] if task else None, task[1] if task else None, text))


def _ask(request: _Request) -> _Reply:
    max_reply = 8 * request.limits.data_bytes + 4 * request.limits.log_chars + 65536
    try:
        return sandbox_worker.POOL.call(request, request.limits.time, max_reply)
    except sandbox_worker.WorkerFailure as exc:
        message = str(exc)
        if message.startswith("time limit"):
            message = _time_exceeded(request.limits) + "; the run was stopped"
        raise ScriptError(message) from None


def _raise(reply: _Reply) -> None:
    error = ScriptError(reply.message, reply.line)
    cause: BaseException | None = None
    if reply.cause is not None:
        kind = getattr(builtins, reply.cause[0], None)
        if isinstance(kind, type) and issubclass(kind, Exception):
            try:
                cause = kind(reply.cause[1])
            except Exception:  # noqa: BLE001 - an exception class with other arguments: no cause then
                cause = None
    raise error from cause


def _subset(names: frozenset[str], values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in names if name in values}


def _inputs(compiled: _Compiled, data: Mapping[str, Any], external: Mapping[str, Any]
            ) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(data, external context, whether that is all the data) that the code needs.

    Code reaches only the variables it names, so only those travel, with two exceptions. External
    entries whose key starts with '_' (code can never name such a key) are the engine's own plain
    data, from which the namespace builds objects such as Camunda's `execution` (camext): they are
    always sent, and with them all data when the code reads a name that nothing else provides (that
    object) or uses a DataBound object: both read and write variables by name.
    """
    sent_external = _subset(compiled.names, external)
    engine_keys = {k: v for k, v in external.items() if k.startswith("_")}
    sent_external.update(engine_keys)
    full = any(isinstance(v, DataBound) for v in sent_external.values()) or bool(engine_keys) and any(
        name not in data and name not in external and name not in HELPERS for name in compiled.free)
    return (dict(data) if full else _subset(compiled.names, data)), sent_external, full


def _request(kind: str, compiled: _Compiled, source: str, data: Mapping[str, Any],
             external: Mapping[str, Any]) -> _Request:
    sent_data, sent_external, full = _inputs(compiled, data, external)
    return _Request(kind, source, sent_data, sent_external, clock.now(), current_limits(), full)


def evaluate(source: str, data: Mapping[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate BPMN/DMN expression text (Python, ``${JUEL}`` or ISO 8601)
    over ``data``; raises SandboxError or ScriptError."""
    python = to_python(source)
    compiled = _expression(python)
    external = external_context or {}
    if compiled.inline and not any(name in data or name in external for name in compiled.calls):
        sent_data, sent_external, _ = _inputs(compiled, data, external)
        if not any(isinstance(v, DataBound) for v in sent_external.values()):  # those are bound in a worker
            return _run(compiled.code, _namespace(sent_data, sent_external), is_script=False, limits=None)
    request = _request("eval", compiled, python, data, external)
    reply = _ask(request)
    if not reply.ok:
        _raise(reply)
    if request.full and isinstance(data, MutableMapping):
        _write_back(data, reply, request.limits)
    _absorb(external, reply)
    return reply.value


def _absorb(external: Mapping[str, Any], reply: _Reply) -> None:
    """What the run changed on engine objects and state, onto the caller's (the worker had copies)."""
    for name, copy in reply.bound.items():
        original = external.get(name)
        if isinstance(original, DataBound):
            original.absorb(copy)
    for key, state in reply.engine_state.items():
        original = external.get(key)
        if isinstance(original, dict) and isinstance(state, dict) and original is not state:
            _update_in_place(original, state)


def _update_in_place(original: dict[str, Any], state: dict[str, Any]) -> None:
    """Make `original` equal to `state`, keeping nested dicts the same objects: the caller may hold
    references to them (e.g. the task attributes a task listener's `task.setAssignee` writes to)."""
    for key in [k for k in original if k not in state]:
        del original[key]
    for key, value in state.items():
        if isinstance(original.get(key), dict) and isinstance(value, dict):
            _update_in_place(original[key], value)
        else:
            original[key] = value


def _write_back(data: MutableMapping[str, Any], reply: _Reply, limits: Limits) -> None:
    """Apply the variables a run set and deleted, unless the task data would then be too large."""
    merged = dict(data)
    merged.update(reply.changed)
    for key in reply.deleted:
        merged.pop(key, None)
    check_data_size(merged, limits)
    data.update(reply.changed)
    for key in reply.deleted:
        data.pop(key, None)


def execute(source: str, data: dict[str, Any], external_context: Mapping[str, Any] | None = None) -> None:
    """Run a script over ``data`` in a worker process; new or rebound JSON-friendly top-level
    variables are written back, deleted ones removed (as SpiffWorkflow's own environment does by
    exec'ing directly in task data). Text it prints goes to the output being captured
    (captured_output). Raises SandboxError or ScriptError, leaving ``data`` untouched."""
    compiled = _script(source)
    external = external_context or {}
    request = _request("exec", compiled, source, data, external)
    reply = _ask(request)
    _emit(reply.printed)
    if not reply.ok:
        _raise(reply)
    _write_back(data, reply, request.limits)
    _absorb(external, reply)


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

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> Any:
        # Remember the task, so text the script prints is attributed to it in the instance's log.
        token = _TASK.set((str(task.id), task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name))
        try:
            return super().execute(task, script, self._with_context(task, external_context))
        finally:
            _TASK.reset(token)

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
