"""Workflow state <-> JSON, with the spec kept out of the instance state.

An instance row stores only the task tree and data; the spec (often larger than the state) is
serialized once per definition version and restored once per process into a cache.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

STATE_FORMAT = 1


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
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry() -> Any:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
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
    return spec, subs


def dump_state(workflow: BpmnWorkflow) -> bytes:
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
    # Task data should be JSON already; dates slip in from scripts, keep them readable.
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"value of type {type(value).__name__} cannot be stored in process data")
