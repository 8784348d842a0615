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

The parts: what code may say and its compilation (engine/sandbox_compile.py), the guards the
compiled code calls (engine/sandbox_guards.py), running and measuring inside a worker
(engine/sandbox_run.py), the worker processes (engine/sandbox_worker.py), the helpers
(engine/sandbox_helpers.py); this module is the caller's side and the public API.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine import clock, sandbox_worker
from engine.expressions import to_python
from engine.sandbox_compile import (
    Compiled,
    SandboxError,
    SandboxSyntaxError,
    ScriptError,
    compile_expression,
    compile_script,
    compiled_expression,
    compiled_script,
)
from engine.sandbox_helpers import CONTEXT_KEY, HELPERS, DataBound  # the helpers, listed in one place
from engine.sandbox_run import (
    Limits,
    Reply,
    Request,
    build_namespace,
    check_data_size,
    current_limits,
    run,
    time_exceeded,
)

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


def _ask(request: Request) -> Reply:
    max_reply = 8 * request.limits.data_bytes + 4 * request.limits.log_chars + 65536
    try:
        return sandbox_worker.POOL.call(request, request.limits.time, max_reply)
    except sandbox_worker.WorkerFailure as exc:
        message = str(exc)
        if message.startswith("time limit"):
            message = time_exceeded(request.limits) + "; the run was stopped"
        raise ScriptError(message) from None


def _raise(reply: Reply) -> None:
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


def _inputs(compiled: Compiled, data: Mapping[str, Any], external: Mapping[str, Any]
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


def _request(kind: str, compiled: Compiled, source: str, data: Mapping[str, Any],
             external: Mapping[str, Any]) -> Request:
    sent_data, sent_external, full = _inputs(compiled, data, external)
    return Request(kind, source, sent_data, sent_external, clock.now(), current_limits(), full)


def evaluate(source: str, data: Mapping[str, Any], external_context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate BPMN/DMN expression text (Python, ``${JUEL}`` or ISO 8601)
    over ``data``; raises SandboxError or ScriptError."""
    python = to_python(source)
    compiled = compiled_expression(python)
    external = external_context or {}
    if compiled.inline and not any(name in data or name in external for name in compiled.calls):
        sent_data, sent_external, _ = _inputs(compiled, data, external)
        if not any(isinstance(v, DataBound) for v in sent_external.values()):  # those are bound in a worker
            return run(compiled.code, build_namespace(sent_data, sent_external), is_script=False, limits=None)
    request = _request("eval", compiled, python, data, external)
    reply = _ask(request)
    if not reply.ok:
        _raise(reply)
    if request.full and isinstance(data, MutableMapping):
        _write_back(data, reply, request.limits)
    _absorb(external, reply)
    return reply.value


def _absorb(external: Mapping[str, Any], reply: Reply) -> None:
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


def _write_back(data: MutableMapping[str, Any], reply: Reply, limits: Limits) -> None:
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
    compiled = compiled_script(source)
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
