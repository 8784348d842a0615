"""Running sandboxed code inside a worker process (engine/sandbox_worker.py calls `handle`): the
namespace (task data, external context, guards), the step and time budget, what print() writes,
and measuring what a run would store before it leaves the worker. The caller's side is
engine/sandbox.py, which also runs inline expressions through `run` without a budget."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import CodeType, TracebackType
from typing import Any

from engine import clock, settings
from engine.sandbox_compile import (
    FORBIDDEN_BUILTINS,
    INTERNAL_NAMES,
    MAX_DEPTH,
    MAX_MESSAGE,
    SANDBOX_FILENAME,
    ScriptError,
    compiled_expression,
    compiled_script,
)
from engine.sandbox_guards import GUARDS
from engine.sandbox_helpers import CONTEXT_KEY, DataBound, camunda_objects


class _BudgetExceeded(BaseException):
    # BaseException so `except Exception:` in a script cannot swallow it
    # (bare `except:` is refused at compile time).
    pass


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


def time_exceeded(limits: Limits) -> str:
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
            raise _BudgetExceeded(time_exceeded(self.limits))

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


def run(code: CodeType, namespace: dict[str, Any], is_script: bool, limits: Limits | None) -> Any:
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
        elif isinstance(err, NameError) and err.name in FORBIDDEN_BUILTINS:
            message = f"'{err.name}' is not available in the sandbox"
        else:
            message = f"{err.__class__.__name__}: {err}"
        if len(message) > MAX_MESSAGE:  # raise ValueError('x' * 10**6) must not become a huge incident
            message = message[:MAX_MESSAGE] + "…"
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


def build_namespace(data: Mapping[str, Any], external_context: Mapping[str, Any] | None,
               script: bool = False, limits: Limits | None = None) -> dict[str, Any]:
    # Same precedence as SpiffWorkflow: external context, then task data.
    namespace: dict[str, Any] = dict(external_context or {})
    context = namespace.pop(CONTEXT_KEY, None)
    if context is not None:
        # Camunda's `execution`/`task` built from plain data; a script's setVariable is a variable
        # of the script (written back like an assignment), an expression's goes into the data.
        namespace.update(camunda_objects(context, namespace if script else data))  # type: ignore[arg-type]
    namespace.update(data)
    namespace.update(GUARDS)
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
class Request:
    kind: str  # "eval" or "exec"
    source: str  # Python (JUEL already translated)
    data: dict[str, Any]  # the variables the code mentions (all of them when `full`)
    external: dict[str, Any]
    now: datetime  # the engine clock of the caller, so now()/today() agree with it
    limits: Limits
    full: bool = False  # all task data was sent: an expression's writes to it come back too


@dataclass
class Reply:
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


def handle(request: Request) -> Reply:
    """Run one request inside a worker process (engine/sandbox_worker.py)."""
    _set_clock(request.now)
    limits = request.limits
    is_script = request.kind == "exec"
    compiled = compiled_script(request.source) if is_script else compiled_expression(request.source)
    namespace = build_namespace(request.data, request.external, script=is_script, limits=limits)
    data_keys = set(request.data)
    for value in request.external.values():
        if isinstance(value, DataBound):  # a script's writes are its variables; an expression's go to data
            value.bind(namespace if is_script else request.data)
    try:
        value = run(compiled.code, namespace, is_script, limits)
    except ScriptError as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        return Reply(False, message=str(err), line=err.line, printed=_printed(namespace),
                      cause=(cause.__class__.__name__, str(cause)[:MAX_MESSAGE]),
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
        reply = Reply(True, value=value, bound=bound, engine_state=engine_state)
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
        if (key in GUARDS or key in INTERNAL_NAMES or key.startswith("_")
                or (key in request.external and key not in request.data)):
            continue
        try:
            if meter.storable(value, strict=True):  # lambdas, iterators, datetimes are working values
                changed[key] = value
        except _TooLarge as exc:
            return _failure(_too_large(limits, "task data", f"at variable '{key}'", exc), _printed(namespace))
    deleted = tuple(k for k in request.data if k not in namespace)
    return Reply(True, changed=changed, deleted=deleted, printed=_printed(namespace), bound=bound,
                  engine_state=engine_state)


def _printed(namespace: dict[str, Any]) -> str:
    printer = namespace.get("_print")
    return printer.text() if isinstance(printer, _Printer) else ""


def _failure(err: ScriptError, printed: str = "") -> Reply:
    return Reply(False, message=str(err), line=err.line, printed=printed, cause=("ScriptError", str(err)))


def memory_exceeded(limits: Limits) -> Reply:
    """The reply when memory ran out outside the code itself (building the namespace or the reply)."""
    return _failure(ScriptError(f"memory limit of {limits.memory_mb} MB exceeded (PDCAFLOW_SANDBOX_MEMORY_MB)"))


def internal_error(exc: Exception) -> Reply:
    reply = _failure(ScriptError(f"internal sandbox error: {exc.__class__.__name__}: {exc}"))
    reply.retire = True
    return reply


def unpicklable(exc: Exception) -> Reply:
    return _failure(ScriptError(f"the result cannot be handed back: {exc}"))
