"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): what a workflow waits for (timers,
messages, signals), delivering messages and signals to it, the events it throws, and its start events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent as BpmnStartEvent
from SpiffWorkflow.util.task import TaskState

from engine.runtime import scopes
from engine.runtime.spiff_facts import definitions as _definitions
from engine.runtime.spiff_facts import element_id, spec_facts


# ---------------------------------------------------------------------- waits: timers and messages
def timer_due(task: Any) -> datetime | None:
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


def event_subprocess_starts(workflow: BpmnWorkflow) -> list[Any]:
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
    catches += [(spec, None) for spec in event_subprocess_starts(workflow)]
    for spec, task in catches:
        for definition in _definitions(spec):
            if isinstance(definition, TimerEventDefinition):
                due = timer_due(task) if task is not None else None
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
    definitions += [d for spec in event_subprocess_starts(workflow) for d in _definitions(spec)
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
