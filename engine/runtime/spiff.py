"""The adapter to SpiffWorkflow: the only modules that touch its internals are this one and its
parts, engine/runtime/spiff_*.py (serializer, patches, facts, waits, diagram, flows).

Everything the runtime needs from a workflow goes through a named function here (the parts' public
names are re-exported below, so callers say `spiff.X` whichever part holds X), and a SpiffWorkflow
upgrade is checked in these modules. Each private call (`_set_state`, `_add_child`, `_predict`,
`_sync_children`, a condition's `_matches`, `_set_internal_data`, `_get_internal_data`, the registry's
`_encoder_mode`) is wrapped and says why it is needed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask
from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent as BpmnStartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.errors import EngineError
from engine.external_task_model import ExternalTask
from engine.runtime import (
    camunda,
    scopes,
    spiff_patches,  # noqa: F401  (SpiffWorkflow corrected where Camunda differs)
)
from engine.runtime.spiff_diagram import (  # noqa: F401  (re-exported)
    ELEMENT_STATE_RANK,
    active_element_properties,
    element_states,
    events_ahead,
)
from engine.runtime.spiff_facts import SpecFacts, element_id, element_name, spec_facts  # noqa: F401  (re-exported)
from engine.runtime.spiff_facts import definitions as _definitions
from engine.runtime.spiff_flows import ConditionalLeave  # noqa: F401  (re-exported)
from engine.runtime.spiff_serializer import (  # noqa: F401  (re-exported)
    STATE_FORMAT,
    DecisionTask,
    dump_specs,
    dump_state,
    load_specs,
    load_state,
)
from engine.runtime.spiff_waits import (  # noqa: F401  (re-exported)
    ThrownEvent,
    Waits,
    deliver_message,
    deliver_signal,
    event_starts,
    event_subprocess_starts,
    fire_start_timers,
    pending_timer_ids,
    take_thrown_events,
    unfinished_task_ids,
    waiting_events,
)
from engine.sandbox_helpers import CONTEXT_KEY

# ---------------------------------------------------------------------- workflows
Workflow = BpmnWorkflow
EngineFailure = SpiffWorkflowException  # what SpiffWorkflow raises for a model or script problem


def new_workflow(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec], script_engine: Any,
                 data: dict[str, Any]) -> BpmnWorkflow:
    """A workflow at its start event, the start data given to the process and to its first task."""
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine)
    workflow.task_tree.data.update(data)
    start_task = workflow.get_next_task(state=TaskState.READY)
    if start_task is not None:
        start_task.data.update(data)
    return workflow


def advance(workflow: BpmnWorkflow, *, refresh_timers: bool = False) -> None:
    """Run every engine step that can run (raises what the model or a script raised).

    Manual and undefined tasks pass through (Camunda runs them as no-ops), and waiting conditional
    events are evaluated again after every step, since the variables may have changed.
    """
    # Each task's writes reach its whole process scope (engine/runtime/scopes.py); a timer that
    # came due is a task run like any other, so the refresh goes through the tracker too.
    tracker = scopes.Tracker()
    if refresh_timers:
        workflow.refresh_timers()
    facts = spec_facts(workflow)
    for _ in range(1000):  # bounded: a model looping through pass-through tasks cannot hang a worker
        workflow.do_engine_steps(**tracker.callbacks(also_before=_interrupt_scope))
        passing = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                   if isinstance(t.task_spec, (ManualTask, NoneTask))] if facts.pass_through else []
        for task in passing:
            tracker.run(task)
        if (not passing and not (facts.conditions and _refresh_conditions(workflow))
                and not _end_beside_idle_event_subprocesses(workflow)):
            if facts.rearmed_boundaries:
                _rearm_boundary_events(workflow)
            return


def _start_conditional_event_subprocesses(workflow: BpmnWorkflow) -> bool:
    """Start the conditional event subprocesses whose condition now holds; True when one started.

    SpiffWorkflow creates a non-timer event subprocess only when an event arrives, and nothing ever
    sends a conditional one; so its condition is evaluated here, with the freshest variables (those of
    the most recently completed task), and the subprocess is created the way SpiffWorkflow creates one
    for a message (`trigger_wf` on the process's start task spec).
    """
    last = workflow.last_task
    if last is None or workflow.is_completed():
        return False
    started = False
    for spec in event_subprocess_starts(workflow):
        definition = getattr(spec, "event_definition", None)
        if not isinstance(definition, ConditionalEventDefinition):
            continue
        active = [sp for sp in workflow.subprocesses.values()
                  if not sp.completed and sp.spec.name == spec._wf_spec.name]
        # it fires when its condition becomes true (remembered on the root task), not on every step while
        # it stays true: a non-interrupting one would otherwise start again and again
        held = workflow.task_tree.internal_data.setdefault("pdca_conditions", {})
        now = bool(workflow.script_engine.evaluate(last, definition.expression))
        was, held[spec.name] = held.get(spec.name, False), now
        if active or not now or was:
            continue
        fresh = dict(last.data)
        child_id = workflow.spec.start.trigger_wf(workflow.task_tree, spec._wf_spec.name)
        workflow.get_task_from_id(child_id).data.update(fresh)
        subprocess = workflow.subprocesses.get(child_id)
        for task in subprocess.get_tasks() if subprocess is not None else []:
            task.data.update(fresh)
            if task.task_spec is spec:
                task.task_spec._update(task)
        started = True
    return started


def _end_beside_idle_event_subprocesses(workflow: BpmnWorkflow) -> bool:
    """A process whose flow has reached its end while event subprocesses still wait for their event
    ends, cancelling them (Camunda: a scope ends when only event subscriptions are left). SpiffWorkflow
    would keep it waiting at its end join for subprocesses that may never start. True when it ended one."""
    ended = False
    if not workflow.subprocesses:  # event subprocesses are subprocesses: none, nothing to end
        return False
    for scope in [workflow, *workflow.subprocesses.values()]:
        unfinished = [t for t in scope.get_tasks(state=TaskState.NOT_FINISHED_MASK) if t.workflow is scope]
        # _EndJoin is SpiffWorkflow's (private) join before a process's end: waiting there = the flow is done
        joins = [t for t in unfinished if t.state == TaskState.WAITING and isinstance(t.task_spec, _EndJoin)]
        if not joins:
            continue
        idle = [t for t in unfinished if t.id in workflow.subprocesses and _idle_event_subprocess(workflow.subprocesses[t.id])]
        covered = {t.id for j in joins for t in j} | {t.id for h in idle for t in h}
        if not idle or any(t.id not in covered for t in unfinished):
            continue
        for holder in idle:
            workflow.cancel(workflow.subprocesses[holder.id])
            holder.cancel()
        for join in joins:
            join.task_spec._update(join)
        ended = True
    return ended


def _idle_event_subprocess(subprocess: BpmnWorkflow) -> bool:
    """An event subprocess whose start event still waits (our parser marks event subprocess starts)."""
    starts = [t for t in subprocess.get_tasks() if t.workflow is subprocess and isinstance(t.task_spec, BpmnStartEvent)
              and "pdca_interrupting" in (getattr(t.task_spec, "extensions", None) or {})]
    return bool(starts) and all(t.state == TaskState.WAITING for t in starts)


def _rearm_boundary_events(workflow: BpmnWorkflow) -> None:
    """A non-interrupting message or signal boundary event stays armed while its activity is active (in
    Camunda it fires on every message/signal); SpiffWorkflow 3.2 arms it once. After it fired, a new
    waiting catch is added beside the activity (`_add_child`, `_predict` and `_update` are SpiffWorkflow's
    private way to add a task and its path to a running tree and let it register with the event manager)."""
    for split in workflow.get_tasks(state=TaskState.COMPLETED):
        if not isinstance(split.task_spec, BoundaryEventSplit):
            continue
        children = split.children
        active = [c for c in children if not isinstance(c.task_spec, BoundaryEvent)
                  and c.has_state(TaskState.READY | TaskState.WAITING | TaskState.STARTED)]
        if not active:
            continue
        for spec in split.task_spec.outputs:
            if not isinstance(spec, BoundaryEvent) or spec.cancel_activity:
                continue
            if not any(isinstance(d, (MessageEventDefinition, SignalEventDefinition)) for d in _definitions(spec)):
                continue
            mine = [c for c in children if c.task_spec is spec]
            if mine and not any(c.state == TaskState.WAITING for c in mine):
                child = split._add_child(spec, TaskState.FUTURE)
                child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
                child.task_spec._update(child)


def _interrupt_scope(task: Any) -> None:
    """Before the start event of an interrupting event subprocess runs, cancel everything else in the
    subprocess's scope (the main flow, its waits, the other event subprocesses), as Camunda does.

    SpiffWorkflow 3.2 runs event subprocesses but never interrupts; the flag comes from our parser
    (engine/bpmn_parser.py). Cancelling tasks (Task.cancel) is SpiffWorkflow's public task API; the
    subprocess lookup goes through the top workflow.
    """
    spec = task.task_spec
    if not (isinstance(spec, BpmnStartEvent) and (getattr(spec, "extensions", None) or {}).get("pdca_interrupting")):
        return
    workflow = task.workflow
    if workflow.parent_task_id is None:
        return
    top = workflow.top_workflow
    holder = top.get_task_from_id(workflow.parent_task_id)  # the event subprocess's task in its scope
    keep = {holder.id} | {t.id for t in holder} | {t.id for t in _ancestors(holder)}
    scope = holder.workflow
    doomed = [t for t in scope.get_tasks(state=TaskState.NOT_FINISHED_MASK)
              if t.workflow is scope and t.id not in keep]
    for victim in doomed:
        if victim.has_state(TaskState.NOT_FINISHED_MASK):
            if victim.id in top.subprocesses:
                top.cancel(top.subprocesses[victim.id])
            victim.cancel()


def _ancestors(task: Any) -> list[Any]:
    out = []
    parent = task.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def _refresh_conditions(workflow: BpmnWorkflow) -> bool:
    r"""Evaluate waiting conditional events with the freshest variables; True when one fired.

    SpiffWorkflow evaluates a condition only when its task is updated, against the data the task
    had when it began waiting; Camunda evaluates it whenever a variable changes. The latest
    completed task holds the freshest variables, so the waiting task gets them first.
    \_update is SpiffWorkflow's (private) way to re-evaluate a waiting task.
    """
    fired = _start_conditional_event_subprocesses(workflow)
    last = workflow.last_task
    # waiting catches register with the top workflow's event manager: no walk of the whole tree
    for task in [t for t in list(workflow.event_manager.tasks.values()) if t.state == TaskState.WAITING]:
        if not isinstance(getattr(task.task_spec, "event_definition", None), ConditionalEventDefinition):
            continue
        if last is not None and last is not task:
            task.data.update(last.data)
        task.task_spec._update(task)
        fired = fired or task.state != TaskState.WAITING
    return fired


def task_by_id(workflow: BpmnWorkflow, task_id: str) -> Any:
    return workflow.get_task_from_id(UUID(task_id))


def is_ready(task: Any) -> bool:
    return task is not None and task.state == TaskState.READY


def ready_user_tasks(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Ready tasks a person must complete (user tasks), by task id; manual and undefined tasks
    pass through (see `advance`), so they are never in an inbox."""
    return {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
            if not isinstance(t.task_spec, (ManualTask, NoneTask))}


def failed_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return workflow.get_tasks(state=TaskState.ERROR)


def mark_failed(task: Any) -> None:
    """Put a task into ERROR: SpiffWorkflow has no public call for it, and a failed task must stay
    visibly failed (an incident) until a retry makes it READY again."""
    if task.state != TaskState.ERROR:
        task._set_state(TaskState.ERROR)


def retry_failed(workflow: BpmnWorkflow, data: dict[str, Any] | None) -> None:
    """Failed tasks become READY again (optionally with corrected data), so the next advance reruns them."""
    for task in workflow.get_tasks(state=TaskState.ERROR):
        if data:
            scopes.receive(task, data)
        task._set_state(TaskState.READY)
        camunda.on_retry(task)


def pdca_attributes(task: Any) -> dict[str, Any]:
    """The raw assignment attributes our parser keeps on a user task spec (engine/bpmn_parser.py),
    with what a task listener changed on this task (engine/runtime/camunda.py)."""
    attributes = (getattr(task.task_spec, "extensions", None) or {}).get("pdca", {})
    overrides = task.internal_data.get(camunda.OVERRIDES_KEY)
    return {**attributes, **overrides} if overrides else attributes


def expression_context(task: Any) -> dict[str, Any]:
    """The external context for evaluating a task's attribute expressions (Camunda's `execution`)."""
    return {CONTEXT_KEY: camunda.script_context(task)}


def task_form(task: Any) -> Any:
    return getattr(task.task_spec, "form", None)


def instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The instance's current variables: the data of the most recently finished task, plus data objects."""
    data: dict[str, Any] = {}
    last = workflow.last_task
    if last is not None:
        data.update(scopes.shared_data(last))
    else:
        data.update(workflow.task_tree.data)
    # Ready/waiting tasks inherited the freshest data from the tasks before them (their locals, e.g.
    # a multi-instance element variable, are not process variables); a called process's open tasks
    # are shown too, as the instance's view has always shown them.
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.ERROR):
        data.update(scopes.shared_data(task))
    data.update(workflow.data)
    return data


def cancel(workflow: BpmnWorkflow) -> None:
    workflow.cancel()


def is_completed(workflow: BpmnWorkflow) -> bool:
    return workflow.is_completed()


# ---------------------------------------------------------------------- errors
def message_of(exc: BaseException) -> str:
    """A readable one-line message for an incident, with the failing script line when known."""
    if isinstance(exc, EngineError):
        return exc.message
    text = str(exc.args[0]) if exc.args else exc.__class__.__name__
    if not isinstance(exc, SpiffWorkflowException):
        text = f"{exc.__class__.__name__}: {text}"
    notes = getattr(exc, "notes", None) or getattr(exc, "__notes__", None) or []
    if isinstance(exc, WorkflowException) and getattr(exc, "error_line", None):
        line = getattr(exc, "line_number", None) or "?"
        if f"(line {line})" in text:
            text = text.replace(f"(line {line})", f"(line {line}: {exc.error_line.strip()})")
        else:
            text += f" (line {line}: {exc.error_line.strip()})"
    extra = [n for n in notes if n not in text]
    return text + ("; " + "; ".join(extra) if extra else "")


def failing_task(exc: BaseException) -> Any:
    return getattr(exc, "task", None)


def has_external_tasks(workflow: BpmnWorkflow) -> bool:
    """Whether the workflow's spec (or a subprocess spec) has an external task."""
    return spec_facts(workflow).external_tasks


def has_human_tasks(workflow: BpmnWorkflow) -> bool:
    """Whether the workflow's spec (or a subprocess spec) has a task a person completes."""
    return spec_facts(workflow).human_tasks


def waiting_external_tasks(workflow: BpmnWorkflow) -> dict[str, Any]:
    """External tasks whose token waits for a worker (STARTED), by task id."""
    return {str(t.id): t for t in workflow.get_tasks(state=TaskState.STARTED)
            if isinstance(t.task_spec, ExternalTask)}


def complete_external(task: Any, data: dict[str, Any]) -> None:
    """A worker finished the task: its variables join the process data and the token moves on."""
    task.data.update(data)
    task.complete()


def throw_error(task: Any, code: str, data: dict[str, Any]) -> bool:
    """A BPMN error from an external task; True when an error boundary event (or an enclosing
    subprocess's) caught it. Uncaught, the task's path ends there, as Camunda 7 ends the execution
    of an unhandled BPMN error: the instance completes when no other path is left."""
    from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
    task.data.update(data)
    workflow = task.workflow.top_workflow
    pending = len(workflow.bpmn_events)
    workflow.catch(BpmnEvent(ErrorEventDefinition(code, code), payload=dict(task.data), target=task.workflow))
    if task.state != TaskState.STARTED or len(workflow.bpmn_events) == pending:
        return True  # a boundary event took it (the attached task is cancelled when it runs)
    del workflow.bpmn_events[pending:]  # nobody catches it: not an event for the outside world
    holder = task.parent if type(task.parent.task_spec).__name__ == "BoundaryEventSplit" else task
    holder.cancel()  # the task and its boundary events
    if not workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        workflow.cancel()  # nothing else is running: the instance ends with this path
    return False
