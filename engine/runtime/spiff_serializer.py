"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): how a workflow's state is stored.

An instance row stores only the task tree and data; the spec (often larger than the state) is
serialized once per definition version and restored once per process into a cache. The registry is
SpiffWorkflow's, configured for our task specs; the task and workflow converters write the same
dictionaries as SpiffWorkflow's own, only cheaper (a restore and a dump are part of every unit of
work). The registry's private `_encoder_mode` is set around a dump, as SpiffWorkflow's serializer does.
"""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
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
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.serializer.event_definition import MessageEventDefinitionConverter
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from engine import decisions
from engine.dmn import DecisionEvaluationError
from engine.external_task_model import ExternalTask
from engine.runtime import camunda
from engine.runtime.spiff_flows import ConditionalLeave, ConditionalLeaveConverter
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
    config[ConditionalLeave] = ConditionalLeaveConverter  # conditional flows leaving an activity
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
