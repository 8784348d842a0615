"""The sandbox's compile time (engine/sandbox.py runs what this accepts): what model code may say.

Our own AST checks refuse, with messages meant for process modellers, what RestrictedPython would
refuse tersely or allow (imports, while loops, def/class, dunder and private names, frame
attributes, wide format specifications); `*`, `**`, `<<`, `+` and `%` are routed through the
`_binop_` guard (engine/sandbox_guards.py); then RestrictedPython compiles. Compiled code is cached
by its text, with the names it mentions (the only variables it can read or write) and whether it is
cheap enough to run in the calling process (`Compiled.inline`). Also the sandbox's fixed limits and
its error types.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType
from typing import Any

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
)

SANDBOX_FILENAME = "<sandbox>"
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 100              # nested sandbox frames (lambdas, comprehensions)
MAX_MESSAGE = 1_000         # characters of an error message kept
MAX_RANGE = 100_000
MAX_SEQUENCE = 1_000_000     # items/characters produced by * and +
MAX_INT_BITS = 100_000       # size of ints produced by ** and <<

# Names that are not helpers but that people try; a NameError on them gets a
# message saying they are deliberately unavailable.
FORBIDDEN_BUILTINS = frozenset({
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


# Non-underscore attributes that still lead out of the sandbox (frames, MRO,
# format strings that can walk `{0.__class__}`): refused here and by the guards at run time.
# format strings that can walk `{0.__class__}`).
FRAME_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "ag_frame", "ag_code",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "tb_frame", "tb_next",
})


# --- compile time -----------------------------------------------------------

_ALLOWED_UNDERSCORE_NAMES = frozenset({"_", "_empty"})
INTERNAL_NAMES = frozenset({"_empty", "_binop_", "_print", "_print_"})
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
        if node.attr in FRAME_ATTRIBUTES:
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
        if name in INTERNAL_NAMES:  # our own injected helpers
            return
        super().check_name(node, name, allow_magic_methods)


@dataclass(frozen=True)
class Compiled:
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


def _compile(source: str, mode: str, limit: int) -> Compiled:
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
    return Compiled(result.code, names, inline, calls, names - bound)


@lru_cache(maxsize=2048)
def compiled_expression(source: str) -> Compiled:
    return _compile(source, "eval", MAX_EXPRESSION_CHARS)


@lru_cache(maxsize=1024)
def compiled_script(source: str) -> Compiled:
    return _compile(source, "exec", MAX_SCRIPT_CHARS)


def compile_expression(source: str) -> CodeType:
    """Compile a Python expression for the sandbox or raise SandboxError."""
    return compiled_expression(source).code


def compile_script(source: str) -> CodeType:
    """Compile a Python script for the sandbox or raise SandboxError."""
    return compiled_script(source).code
