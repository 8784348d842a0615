"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): what a process can ever do, and the
element a task stands for.

A save or an advance skips each walk of the task tree that can find nothing for the instance's
process (no timer, message or signal catch: no waits to look for; no manual task: none to pass
through...). The facts are worked out once per spec object and cached with a weak key.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask
from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent as BpmnStartEvent

from engine.external_task_model import ExternalTask


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
        events = [(s, d) for s in task_specs for d in definitions(s)]
        facts = SpecFacts(
            external_tasks=any(isinstance(s, ExternalTask) for s in task_specs),
            # as ready_user_tasks picks them: manual specs other than pass-through manual/undefined tasks
            human_tasks=any(getattr(s, "manual", False) and not isinstance(s, (ManualTask, NoneTask))
                            for s in task_specs),
            waits=any(isinstance(d, (TimerEventDefinition, MessageEventDefinition, SignalEventDefinition))
                      for _, d in events),
            pass_through=any(isinstance(s, (ManualTask, NoneTask)) for s in task_specs),
            conditions=any(isinstance(d, ConditionalEventDefinition) for _, d in events),
            rearmed_boundaries=any(isinstance(s, BoundaryEvent) and not s.cancel_activity
                                   and isinstance(d, (MessageEventDefinition, SignalEventDefinition))
                                   for s, d in events),
            timer_starts=any(isinstance(s, BpmnStartEvent) and isinstance(d, TimerEventDefinition)
                             for s, d in events))
        _SPEC_FACTS[key] = facts
    return facts


def definitions(task_spec: Any) -> list[Any]:
    """The event definitions a catch waits for: an event-based gateway waits for all of its events at
    once (SpiffWorkflow gives the gateway one 'multiple' definition holding them)."""
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def element_id(task: Any) -> str:
    return task.task_spec.bpmn_id or task.task_spec.name


def element_name(task: Any) -> str:
    return task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name
