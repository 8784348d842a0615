"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): what each element of an instance's
diagram did (its state, how often it ran, the flows a token took) and what the instance still waits for.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity as _CallActivitySpec
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from engine.external_task_model import ExternalTask
from engine.runtime.spiff_flows import failed_activity
from engine.runtime.spiff_waits import timer_due

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
            due = timer_due(task)
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
    (start/end markers, boundary-event splits and joins, the choice of an activity's conditional
    flows) have no BPMN id and are stepped over; a choice that failed shows as the activity's incident."""
    states: dict[str, dict[str, Any]] = {}
    moves: set[tuple[str, str]] = set()
    for task in workflow.get_tasks():
        bpmn_id = task.task_spec.bpmn_id
        if not bpmn_id:
            stuck = failed_activity(task)  # no outgoing flow of its activity could be taken
            if stuck is not None and not _in_called_process(task):
                entry = states.setdefault(stuck, {"state": "incident", "count": 0, "task_ids": []})
                entry["state"] = "incident"
                entry["task_ids"].append(str(task.id))
            continue
        if _in_called_process(task):
            continue
        found = _element_state(task)
        if found is None:
            # a branch that reached a join before the last one: SpiffWorkflow cancels its copy of the
            # join when the join fires, but that branch's token did travel the flow into it
            if task.state == TaskState.CANCELLED and isinstance(task.task_spec, Join) and \
                    task.parent is not None and task.parent.state == TaskState.COMPLETED:
                _add_move(moves, task, bpmn_id)
            continue
        state, details = found
        entry = states.setdefault(bpmn_id, {"state": state, "count": 0, "task_ids": []})
        entry["count"] += 1
        entry["task_ids"].append(str(task.id))
        if ELEMENT_STATE_RANK[state] >= ELEMENT_STATE_RANK[entry["state"]]:
            entry["state"] = state
            entry.update(details)
        _add_move(moves, task, bpmn_id)
    return states, moves


def _add_move(moves: set[tuple[str, str]], task: Any, bpmn_id: str) -> None:
    """The flow from the element the token came from (engine-internal tasks stepped over) to `task`'s."""
    parent = task.parent
    while parent is not None and not parent.task_spec.bpmn_id:
        parent = parent.parent
    if parent is not None and parent.workflow is task.workflow:
        moves.add((parent.task_spec.bpmn_id, bpmn_id))
