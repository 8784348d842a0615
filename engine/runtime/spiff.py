"""The adapter to SpiffWorkflow: the only module that touches its internals.

Everything the runtime needs from a workflow goes through a named function here, so a
SpiffWorkflow upgrade is checked in one place. Each private call (`_set_state`, `_add_child`,
`_predict`, `_set_internal_data`, `_get_internal_data`, the registry's `_encoder_mode`) is
wrapped and says why it is needed.

Serialization: an instance row stores only the task tree and data; the spec (often larger than
the state) is serialized once per definition version and restored once per process into a cache.
"""

from __future__ import annotations

import functools
import json
import weakref
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    BpmnTaskSpecConverter,
    MultiInstanceTaskConverter,
    SubWorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.spec import TaskSpecConverter
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin, BoundaryEventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, IntermediateCatchEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent as BpmnStartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity as _CallActivitySpec
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.serializer.event_definition import MessageEventDefinitionConverter
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from engine import clock, cron, decisions
from engine.dmn import DecisionEvaluationError
from engine.errors import EngineError
from engine.external_task_model import ExternalTask
from engine.runtime import camunda, scopes
from engine.sandbox_helpers import CONTEXT_KEY
from engine.thrown_events import ThrownMessageEventDefinition, ThrownSignalEventDefinition

STATE_FORMAT = 1


# Task ids are parsed from text several times per restore (id, parent, children) and again at every
# restore of the same instance; UUIDs are immutable, so equal texts may share one object.
_uuid = functools.lru_cache(maxsize=16384)(UUID)
_uuid_text = functools.lru_cache(maxsize=16384)(str)
_PRIMITIVES = frozenset({str, int, float, bool, type(None)})


def _restored(registry: Any, value: Any) -> Any:
    """registry.restore(value) without its walk for the usual case, a flat dict of plain values fresh
    from json.loads (nothing else refers to it, so it need not be copied)."""
    if type(value) is dict and "typename" not in value and all(type(v) in _PRIMITIVES for v in value.values()):
        return value
    return registry.restore(value)


class _TaskConverter(TaskConverter):
    """SpiffWorkflow's task converter (same dictionary, same restored task), with cheaper id parsing
    and data restoring: a restore is a large share of every unit of work."""

    def to_dict(self, task: Any) -> dict[str, Any]:
        parent = task.parent
        if parent is None:
            data, delta = task.data, {}
        else:  # only what differs from the parent's data (as TaskConverter)
            data, before, after = {}, parent.data, task.data
            delta = {"updates": {k: v for k, v in after.items() if k not in before or v != before[k]},
                     "deletions": [k for k in before if k not in after]}
        return {
            "id": _uuid_text(task.id),
            "parent": _uuid_text(task._parent) if parent is not None else None,
            "children": [_uuid_text(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
        }

    def from_dict(self, dct: dict[str, Any], workflow: Any) -> Any:
        task_spec = workflow.spec.task_specs.get(dct["task_spec"])
        task = self.target_class(workflow, task_spec, state=dct["state"], id=_uuid(dct["id"]))
        task._parent = _uuid(dct["parent"]) if dct["parent"] is not None else None
        task._children = [_uuid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        task.internal_data = _restored(self.registry, dct["internal_data"])
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        parent = task.parent if delta else None
        if parent is not None:  # the data is the parent's with the task's own changes (as TaskConverter)
            data = DeepMerge.merge({}, parent.data)
            data.update(_restored(self.registry, delta.get("updates", {})))
            for key in delta.get("deletions", {}):
                if key in data:
                    del data[key]
        else:
            data = _restored(self.registry, dct["data"])
        task.data = data
        return task


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Leaves the spec out of the dictionary; restoring takes the spec objects instead."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: BpmnProcessSpec | None = None,
                  subprocess_specs: dict[str, BpmnProcessSpec] | None = None) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = {_uuid(k): self.registry.restore(v, workflow=workflow) for k, v in dct["tasks"].items()}
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class DecisionTask(BpmnSpecMixin):
    """A business-rule task evaluated by engine/dmn (not SpiffWorkflow's DMN engine).

    The spec carries the decision's DMN document as deployed with this process version, so a
    running instance keeps the rules it started with; `decisions.task_updates` says what is written.
    """

    def __init__(self, wf_spec: Any, bpmn_id: str, decision_ref: str = "", decision_xml: str = "",
                 result_variable: str | None = None, map_decision_result: str | None = None, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.decision_ref = decision_ref
        self.decision_xml = decision_xml
        self.result_variable = result_variable
        self.map_decision_result = map_decision_result

    def _run_hook(self, my_task: Any) -> bool:  # SpiffWorkflow's hook for a task's own work
        try:
            updates = decisions.task_updates(self.decision_xml, self.decision_ref, my_task.data,
                                             self.result_variable, self.map_decision_result)
        except DecisionEvaluationError as exc:
            raise WorkflowTaskException(f"decision '{self.decision_ref}' failed: {exc}", task=my_task) from None
        my_task.data.update(updates)
        return super()._run_hook(my_task)


class _DecisionTaskConverter(TaskSpecConverter):
    def to_dict(self, spec: DecisionTask) -> dict[str, Any]:
        dct = self.get_default_attributes(spec)
        dct.update(decision_ref=spec.decision_ref, decision_xml=spec.decision_xml,
                   result_variable=spec.result_variable, map_decision_result=spec.map_decision_result)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> DecisionTask:
        return self.task_spec_from_dict(dct)


def _registry() -> Any:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
    config[Task] = _TaskConverter
    config[DecisionTask] = _DecisionTaskConverter
    # Camunda extensions' task specs (engine/runtime/camunda.py) serialize like the ones they extend.
    config[camunda.PdcaSequentialMultiInstance] = MultiInstanceTaskConverter
    config[camunda.PdcaParallelMultiInstance] = MultiInstanceTaskConverter
    config[camunda.PdcaCallActivity] = SubWorkflowConverter
    config[ExternalTask] = BpmnTaskSpecConverter  # camunda:type="external" (engine/external_task_model.py)
    config[ThrownMessageEventDefinition] = MessageEventDefinitionConverter
    config[ThrownSignalEventDefinition] = config[SignalEventDefinition]
    return BpmnWorkflowSerializer.configure(config)


_REGISTRY = _registry()
_SERIALIZER = BpmnWorkflowSerializer(_REGISTRY)


def dump_specs(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> bytes:
    dct = {
        "spec": _REGISTRY.convert(spec),
        "subprocess_specs": {name: _REGISTRY.convert(s) for name, s in subprocess_specs.items()},
    }
    return json.dumps(dct).encode()


def load_specs(raw: bytes) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    dct = json.loads(raw)
    spec = _REGISTRY.restore(dct["spec"])
    subs = {name: _REGISTRY.restore(s) for name, s in dct["subprocess_specs"].items()}
    camunda.install(spec, subs)
    return spec, subs


def dump_state(workflow: BpmnWorkflow) -> bytes:
    # The registry's encoder mode is what SpiffWorkflow's own serializer sets around a dump (it makes
    # data objects serialize by value); we dump through the registry directly, so we set it too.
    _REGISTRY._encoder_mode = True
    try:
        dct = _REGISTRY.convert(workflow)
    finally:
        _REGISTRY._encoder_mode = False
    dct["state_format"] = STATE_FORMAT
    return json.dumps(dct, separators=(",", ":"), default=_json_default).encode()


def load_state(raw: bytes, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec],
               script_engine: Any) -> BpmnWorkflow:
    dct = json.loads(raw)
    dct.pop("state_format", None)
    typename = _REGISTRY.typenames[BpmnWorkflow]
    converter = _REGISTRY.convert_from_dict[typename]
    workflow = converter(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow


def _json_default(value: Any) -> Any:
    # SpiffWorkflow's own objects nested in internal data (the events an event-based gateway has seen)
    # convert through the registry, as SpiffWorkflow's encoder does.
    typename = _REGISTRY.typenames.get(type(value))
    if typename is not None:
        return _REGISTRY.convert_to_dict[typename](value)
    # Task data should be JSON already; dates slip in from scripts, keep them readable.
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"value of type {type(value).__name__} cannot be stored in process data")


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
    for spec in _event_subprocess_starts(workflow):
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


def element_id(task: Any) -> str:
    return task.task_spec.bpmn_id or task.task_spec.name


def element_name(task: Any) -> str:
    return task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name


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


# ---------------------------------------------------------------------- waits: timers and messages
def _timer_due(task: Any) -> datetime | None:
    # SpiffWorkflow keeps a timer's next due time in the task's internal data and offers no getter.
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):
        value = value.get("next")
    if not value:
        return None
    try:
        return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


class Waits(NamedTuple):
    """What a workflow waits for: timer tasks (task id -> (element id, due)), message and signal names."""

    timers: dict[str, tuple[str, datetime]]
    messages: set[str]
    signals: set[str]

    def __bool__(self) -> bool:
        return bool(self.timers or self.messages or self.signals)


def _waiting_catches(workflow: BpmnWorkflow) -> list[Any]:
    """Every waiting catch event of the instance: intermediate catches, receive tasks, boundary events,
    the events after an event-based gateway and the start events of event subprocesses, in the top
    workflow and in every subprocess (SpiffWorkflow registers them all with the top workflow's event
    manager; plain WAITING tasks are added in case a catch is not registered)."""
    found: dict[Any, Any] = {}
    for task in list(workflow.event_manager.tasks.values()):
        if task.state == TaskState.WAITING:
            found[task.id] = task
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if getattr(task.task_spec, "event_definition", None) is not None:
            found.setdefault(task.id, task)
    return list(found.values())


def _definitions(task_spec: Any) -> list[Any]:
    """The event definitions a catch waits for: an event-based gateway waits for all of its events at
    once (SpiffWorkflow gives the gateway one 'multiple' definition holding them)."""
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def _event_subprocess_starts(workflow: BpmnWorkflow) -> list[Any]:
    """Start event specs of the message/signal event subprocesses of the running top-level process:
    SpiffWorkflow creates such a subprocess only when its event arrives, so nothing waits for it yet."""
    if workflow.is_completed():
        return []
    out = []
    for name in getattr(workflow.spec.start, "trigger_specs", []):
        sub = workflow.subprocess_specs.get(name)
        out.extend(getattr(sub, "bpmn_start_events", []) if sub is not None else [])
    return out


def waiting_events(workflow: BpmnWorkflow) -> Waits:
    """The workflow's waiting timers, messages and signals (the timer rows and subscriptions to project)."""
    timers: dict[str, tuple[str, datetime]] = {}
    messages: set[str] = set()
    signals: set[str] = set()
    if not spec_facts(workflow).waits or workflow.is_completed():
        return Waits(timers, messages, signals)
    catches = [(t.task_spec, t) for t in _waiting_catches(workflow)]
    catches += [(spec, None) for spec in _event_subprocess_starts(workflow)]
    for spec, task in catches:
        for definition in _definitions(spec):
            if isinstance(definition, TimerEventDefinition):
                due = _timer_due(task) if task is not None else None
                if due is not None:
                    timers[str(task.id)] = (element_id(task), due)
            elif isinstance(definition, MessageEventDefinition):
                messages.add(definition.name)
            elif isinstance(definition, SignalEventDefinition):
                signals.add(definition.name)
    return Waits(timers, messages, signals)


def _deliver(workflow: BpmnWorkflow, kind: type, name: str, data: dict[str, Any],
             payload: Any = None) -> int:
    """Hand an event (message or signal) to everything in the instance waiting for it: catches, the
    events of an event-based gateway, boundary events and event subprocesses (which SpiffWorkflow
    starts on the event). Its data becomes process variables of the tasks that take it.

    The event must carry the catch's own event definition object (SpiffWorkflow matches definitions
    by class and name, and the Camunda parser uses its own subclasses)."""
    waiting = [t for t in _waiting_catches(workflow)
               if any(isinstance(d, kind) and d.name == name for d in _definitions(t.task_spec))]
    definitions = [d for t in waiting for d in _definitions(t.task_spec) if isinstance(d, kind) and d.name == name]
    definitions += [d for spec in _event_subprocess_starts(workflow) for d in _definitions(spec)
                    if isinstance(d, kind) and d.name == name]
    if not definitions:
        return 0
    for task in waiting:
        scopes.receive(task, data)
    definition = definitions[0]
    if payload is None and kind is MessageEventDefinition and hasattr(definition, "result_var"):
        payload = {"payload": dict(data), "result_var": definition.result_var or name}
    elif payload is None and kind is MessageEventDefinition:
        payload = dict(data)
    caught = workflow.event_manager.catch(BpmnEvent(definition, payload), internal=False)
    # the tasks that took it (now READY; a task becoming ready inherits its parent's data, so this is
    # after the catch), including the start event of an event subprocess the event started
    for task in workflow.get_tasks(state=TaskState.READY):
        if any(isinstance(d, kind) and d.name == name for d in _definitions(task.task_spec)):
            scopes.receive(task, data)
    return caught


def pending_timer_ids(workflow: BpmnWorkflow, leased: set[str]) -> set[str]:
    """Ids of timer tasks that have not fired: the waiting ones, and leased ones already READY but
    unrun (a timer that came due during an incident and was armed again by a retry)."""
    out = {str(t.id) for t in workflow.get_tasks(state=TaskState.WAITING)}
    out |= {str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=False) if str(t.id) in leased}
    return out


def unfinished_task_ids(workflow: BpmnWorkflow) -> set[str]:
    return {str(t.id) for t in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY)}


def deliver_message(workflow: BpmnWorkflow, name: str, data: dict[str, Any]) -> int:
    """Hand a message to the tasks waiting for it; its data becomes process variables (the Camunda
    definition also keeps the whole payload under its result variable, which we name after the message)."""
    return _deliver(workflow, MessageEventDefinition, name, data)


def deliver_signal(workflow: BpmnWorkflow, name: str, data: dict[str, Any]) -> int:
    """Hand a signal to every task waiting for it (a signal reaches all its catchers); its data
    becomes process variables."""
    return _deliver(workflow, SignalEventDefinition, name, data)


class ThrownEvent(NamedTuple):
    """A message or signal an instance threw that none of its own catches took: it goes to other instances."""

    kind: str  # "message" | "signal"
    name: str
    data: dict[str, Any]


def take_thrown_events(workflow: BpmnWorkflow) -> list[ThrownEvent]:
    """Remove the events the workflow threw and could not catch itself, returning the messages and
    signals among them. Errors and escalations nobody caught end their path like a none end event
    (Camunda's rule), and a terminate has already done its work, so those are dropped."""
    out: list[ThrownEvent] = []
    for event in workflow.get_events():
        definition = event.event_definition
        if isinstance(definition, SignalEventDefinition):
            out.append(ThrownEvent("signal", definition.name, {}))
        elif isinstance(definition, MessageEventDefinition):
            out.append(ThrownEvent("message", definition.name, _message_payload(definition.name, event.payload)))
    return out


def _message_payload(name: str, payload: Any) -> dict[str, Any]:
    # The Camunda definition wraps the thrown value as {"payload": value, "result_var": name}; without
    # a camunda:expression the value is the thrower's variables (engine/bpmn_parser.py ThrownMessageEventDefinition).
    if isinstance(payload, dict) and "result_var" in payload and "payload" in payload:
        value = payload["payload"]
        if isinstance(value, dict):
            return dict(value)
        return {payload["result_var"] or name: value}  # a single value: a variable named after the message
    return dict(payload) if isinstance(payload, dict) else {}


def event_starts(spec: BpmnProcessSpec) -> list[tuple[str, str]]:
    """(kind, name) of the process's message and signal start events (top level, not event subprocesses)."""
    out = []
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if not isinstance(task_spec, BpmnStartEvent):
            continue
        if isinstance(definition, MessageEventDefinition):
            out.append(("message", definition.name))
        elif isinstance(definition, SignalEventDefinition):
            out.append(("signal", definition.name))
    return sorted(set(out))


def fire_start_timers(workflow: BpmnWorkflow, now: datetime) -> None:
    """A timer start event has done its work once an instance is being started (by the schedule in
    engine.schedules, or by hand): mark it fired, as Camunda starts one instance per timer event.

    SpiffWorkflow would otherwise wait for the start timer itself; there is no public call to say
    "this timer fired", so its internal event data is set and (for a cycle, which SpiffWorkflow grows
    one repetition at a time) exactly one repetition's path is added.
    """
    if not spec_facts(workflow).timer_starts:
        return
    for task in workflow.get_tasks(state=TaskState.ANY_MASK):
        spec = task.task_spec
        definition = getattr(spec, "event_definition", None)
        if not (isinstance(spec, BpmnStartEvent) and isinstance(definition, TimerEventDefinition)):
            continue
        if isinstance(definition, CycleTimerEventDefinition):
            for output in spec.outputs:
                child = task._add_child(output, TaskState.FUTURE)
                child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
            task._set_internal_data(event_fired=True)
        else:
            task._set_internal_data(event_value=(now - timedelta(seconds=1)).isoformat(), event_fired=True)


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


# ---------------------------------------------------------------------- cron cycles
# SpiffWorkflow's cycle timers know ISO 8601 repeats only (a fixed duration between firings). A
# Camunda cron `timeCycle` (engine.cron) keeps its own `event_value`: `{"cycles": -1, "next": ISO,
# "cron": text}`, the next firing computed from the cron expression each time it fires; the shape
# SpiffWorkflow's own cycles use, so `_timer_due` and `details()` read it unchanged.
_spiff_cycle_complete = CycleTimerEventDefinition.cycle_complete


def _cron_text(definition: CycleTimerEventDefinition, task: Any) -> str | None:
    value = task._get_internal_data("event_value")
    if isinstance(value, dict) and value.get("cron"):
        return value["cron"]
    if value is not None:
        return None  # an ISO cycle already under way
    expression = (definition.expression or "").strip()
    if cron.is_cron(expression):
        return expression
    if "${" in expression or "#{" in expression:  # an expression may give a cron text
        result = task.workflow.script_engine.evaluate(task, expression)
        if isinstance(result, str) and cron.is_cron(result.strip()):
            return result.strip()
    return None


def _cycle_complete(self: CycleTimerEventDefinition, my_task: Any) -> bool:
    text = _cron_text(self, my_task)
    ready = _spiff_cycle_complete(self, my_task) if text is None else _cron_cycle_complete(my_task, text)
    spec = my_task.task_spec
    if ready and (isinstance(spec, IntermediateCatchEvent) or (isinstance(spec, BoundaryEvent) and spec.cancel_activity)):
        # The token passes an intermediate catch event once, and an interrupting boundary event ends
        # its activity: the first firing is the event (as in Camunda), where SpiffWorkflow would start
        # the outgoing path again at every repetition and never interrupt.
        # A cycle event predicts no children (SpiffWorkflow adds one per repetition): add the one
        # path, then let the event run and complete like any fired catch event.
        my_task.internal_data.pop("event_value", None)
        my_task._set_internal_data(event_fired=True)
        for output in my_task.task_spec.outputs:
            child = my_task._add_child(output, TaskState.FUTURE)
            child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
        my_task._ready()
        return False
    return ready


def _cron_cycle_complete(my_task: Any, text: str) -> bool:
    now = clock.now()
    value = my_task._get_internal_data("event_value")
    if value is None:
        first = cron.next_after(text, now)
        value = {"cycles": -1 if first else 0, "next": first.isoformat() if first else None, "cron": text}
    ready = False
    if value["cycles"] != 0 and datetime.fromisoformat(value["next"]) <= now:
        # As Camunda: the next firing is the cron's next time after now (missed ones are not replayed).
        following = cron.next_after(text, now)
        value["next"] = following.isoformat() if following else None
        value["cycles"] = -1 if following else 0
        ready = True
    elif value["cycles"] == 0:
        my_task.internal_data.pop("event_value", None)
        my_task.internal_data["event_fired"] = True
        return False
    my_task._set_internal_data(event_value=value)
    return ready


CycleTimerEventDefinition.cycle_complete = _cycle_complete  # type: ignore[method-assign]


# A non-interrupting cycle timer on an activity starts one path per firing; SpiffWorkflow makes those
# paths children of the waiting boundary event task, so ending the activity (which cancels the
# waiting event) would cancel them too. In Camunda they go on independently: the event task alone
# is marked cancelled and the paths it started keep running.
_spiff_boundary_threshold = BoundaryEventJoin._check_threshold_structured


def _boundary_threshold(self: BoundaryEventJoin, my_task: Any) -> tuple[bool, list[Any]]:
    finished, cancel = _spiff_boundary_threshold(self, my_task)
    keep = []
    for task in cancel:
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, CycleTimerEventDefinition) and task.children:
            # Task.cancel() without dropping the children, nor their event registrations
            task._set_state(TaskState.CANCELLED)
            task.workflow.top_workflow.event_manager.remove_task(task)
        else:
            keep.append(task)
    return finished, keep


BoundaryEventJoin._check_threshold_structured = _boundary_threshold  # type: ignore[method-assign]


# ---------------------------------------------------------------------- the clock SpiffWorkflow reads
# SpiffWorkflow's timer events call ``datetime.now(timezone.utc)`` in
# ``SpiffWorkflow.bpmn.specs.event_definitions.timer`` (it reads the time nowhere else); that module's
# ``datetime`` becomes `_SpiffDatetime`, whose now() is engine.clock's.
class _DelegateToDatetime(type):
    # Everything but now() is the real datetime class, and isinstance() checks accept real
    # datetimes, so no object of a stand-in class ever leaves SpiffWorkflow.
    def __getattr__(cls, name: str) -> Any:
        return getattr(datetime, name)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, datetime)


class _SpiffDatetime(metaclass=_DelegateToDatetime):
    """What SpiffWorkflow's timer module sees as `datetime`: its `now()` is the engine clock."""

    @staticmethod
    def now(tz: tzinfo | None = None) -> datetime:
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


_spiff_timer.datetime = _SpiffDatetime  # type: ignore[misc]


# ---------------------------------------------------------------------- what a spec can ever do
class SpecFacts(NamedTuple):
    """What a process (with its subprocess specs) can ever do: a save or an advance skips the walks of
    the task tree that can find nothing in it (each is a full walk of every task of the instance)."""

    external_tasks: bool  # an external task somewhere (the external_task projection applies)
    human_tasks: bool  # a task a person completes somewhere (the human_task projection applies)
    waits: bool  # a catch of a timer, message or signal somewhere (waiting_events can find one)
    pass_through: bool  # a manual or undefined task (advance runs them)
    conditions: bool  # a conditional event (advance evaluates them again after each step)
    rearmed_boundaries: bool  # a non-interrupting message/signal boundary event (advance re-arms it)
    timer_starts: bool  # a timer start event (fire_start_timers marks it fired)


# weak keys: an id()-keyed cache once answered for a new spec that reused a freed spec's address
_SPEC_FACTS: weakref.WeakKeyDictionary[Any, SpecFacts] = weakref.WeakKeyDictionary()


def spec_facts(workflow: BpmnWorkflow) -> SpecFacts:
    """What the workflow's spec and subprocess specs contain; cached per spec object (a definition
    version's specs are restored once, engine/definitions.py)."""
    key = workflow.spec
    facts = _SPEC_FACTS.get(key)
    if facts is None:
        task_specs = [s for spec in [workflow.spec, *workflow.subprocess_specs.values()]
                      for s in spec.task_specs.values()]
        definitions = [(s, d) for s in task_specs for d in _definitions(s)]
        facts = SpecFacts(
            external_tasks=any(isinstance(s, ExternalTask) for s in task_specs),
            # as ready_user_tasks picks them: manual specs other than pass-through manual/undefined tasks
            human_tasks=any(getattr(s, "manual", False) and not isinstance(s, (ManualTask, NoneTask))
                            for s in task_specs),
            waits=any(isinstance(d, (TimerEventDefinition, MessageEventDefinition, SignalEventDefinition))
                      for _, d in definitions),
            pass_through=any(isinstance(s, (ManualTask, NoneTask)) for s in task_specs),
            conditions=any(isinstance(d, ConditionalEventDefinition) for _, d in definitions),
            rearmed_boundaries=any(isinstance(s, BoundaryEvent) and not s.cancel_activity
                                   and isinstance(d, (MessageEventDefinition, SignalEventDefinition))
                                   for s, d in definitions),
            timer_starts=any(isinstance(s, BpmnStartEvent) and isinstance(d, TimerEventDefinition)
                             for s, d in definitions))
        _SPEC_FACTS[key] = facts
    return facts


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


# ---------------------------------------------------------------------- diagram: what each element did
# Order of precedence when several tasks share an element (loops, multi-instance): the most
# urgent state wins, so an element with one failed and one finished run shows its incident.
ELEMENT_STATE_RANK = {"completed": 0, "waiting": 1, "active": 2, "incident": 3}
_PREDICTED = TaskState.MAYBE | TaskState.LIKELY | TaskState.FUTURE


def _in_called_process(task: Any) -> bool:
    """Whether a task runs inside a called process (a call activity's own diagram, not this one);
    embedded subprocesses are drawn in the same diagram and stay in."""
    sub = task.workflow
    top = sub.top_workflow
    while sub is not top:
        parent = top.get_task_from_id(sub.parent_task_id)
        if isinstance(parent.task_spec, _CallActivitySpec):
            return True
        sub = parent.workflow
    return False


def _element_state(task: Any) -> tuple[str, dict[str, Any]] | None:
    """(state, details) of one task for the diagram; None for predicted or cancelled branches."""
    state = task.state
    if state & _PREDICTED or state == TaskState.CANCELLED:
        return None
    if state == TaskState.COMPLETED:
        return "completed", {}
    if state == TaskState.ERROR:
        return "incident", {}
    if state == TaskState.STARTED and isinstance(task.task_spec, ExternalTask):
        return "waiting", {"waiting_for": "external task", "topic": getattr(task.task_spec, "topic", None)}
    if state == TaskState.WAITING:
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            due = _timer_due(task)
            return "waiting", {"waiting_for": "timer", "due": due.isoformat() if due else None}
        if isinstance(definition, MessageEventDefinition):
            return "waiting", {"waiting_for": "message", "message": definition.name}
        if definition is not None:  # signals, conditions, escalations caught by a waiting event
            return "waiting", {"waiting_for": type(definition).__name__.replace("EventDefinition", "").lower()}
    return "active", {}  # READY user tasks, running subprocesses and call activities, joins waiting for branches


def active_element_properties(workflow: BpmnWorkflow, name: str) -> list[str]:
    """The `camunda:property` NAME of each element of the instance's own diagram where a token is
    (active, waiting or in an incident; a call activity while its called process runs), first come
    first; each value once. The parser keeps an element's properties on its spec's `extensions`."""
    states, _ = element_states(workflow)
    by_id = {spec.bpmn_id: spec for spec in workflow.spec.task_specs.values() if getattr(spec, "bpmn_id", None)}
    values: list[str] = []
    for element_id, info in states.items():
        if info["state"] == "completed" or element_id not in by_id:
            continue
        value = (getattr(by_id[element_id], "extensions", None) or {}).get(name)
        if isinstance(value, str) and value.strip() and value.strip() not in values:
            values.append(value.strip())
    return values


def events_ahead(workflow: BpmnWorkflow) -> list[dict[str, Any]]:
    """Every event the instance waits for — also inside called processes, which the diagram leaves
    out — as {name, waiting_for, due?, message?, topic?}: what a case page lists as still to come."""
    out = []
    for task in workflow.get_tasks():
        found = _element_state(task) if task.task_spec.bpmn_id else None
        if found is not None and found[0] == "waiting":
            out.append({"name": getattr(task.task_spec, "bpmn_name", None) or task.task_spec.bpmn_id, **found[1]})
    return out


def element_states(workflow: BpmnWorkflow) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    """What each BPMN element of the instance's diagram did: {element id: {state, count, task_ids, …}}
    and the (source, target) element pairs a token travelled along. Engine-internal task specs
    (start/end markers, boundary-event splits and joins) have no BPMN id and are stepped over."""
    states: dict[str, dict[str, Any]] = {}
    moves: set[tuple[str, str]] = set()
    for task in workflow.get_tasks():
        bpmn_id = task.task_spec.bpmn_id
        if not bpmn_id or _in_called_process(task):
            continue
        found = _element_state(task)
        if found is None:
            continue
        state, details = found
        entry = states.setdefault(bpmn_id, {"state": state, "count": 0, "task_ids": []})
        entry["count"] += 1
        entry["task_ids"].append(str(task.id))
        if ELEMENT_STATE_RANK[state] >= ELEMENT_STATE_RANK[entry["state"]]:
            entry["state"] = state
            entry.update(details)
        parent = task.parent
        while parent is not None and not parent.task_spec.bpmn_id:
            parent = parent.parent
        if parent is not None and parent.workflow is task.workflow:
            moves.add((parent.task_spec.bpmn_id, bpmn_id))
    return states, moves
