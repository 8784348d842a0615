"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): SpiffWorkflow behaviour corrected
where Camunda 7 differs, by replacing a SpiffWorkflow method or module global at import.

- cron `timeCycle`s (SpiffWorkflow knows ISO 8601 repeats only), and a cycle on an intermediate catch
  or interrupting boundary event firing once;
- the paths a non-interrupting cycle timer started outliving the activity it is attached to;
- the clock SpiffWorkflow's timers read (engine.clock's, so tests and the scheduler agree on "now").

engine/runtime/spiff.py imports this module, so the patches are in place wherever a workflow runs.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, IntermediateCatchEvent
from SpiffWorkflow.util.task import TaskState

from engine import clock, cron

# ---------------------------------------------------------------------- cron cycles
# SpiffWorkflow's cycle timers know ISO 8601 repeats only (a fixed duration between firings). A
# Camunda cron `timeCycle` (engine.cron) keeps its own `event_value`: `{"cycles": -1, "next": ISO,
# "cron": text}`, the next firing computed from the cron expression each time it fires; the shape
# SpiffWorkflow's own cycles use, so `spiff_waits.timer_due` and `details()` read it unchanged.
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
