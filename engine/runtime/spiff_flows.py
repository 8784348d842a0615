"""Part of the SpiffWorkflow adapter (engine/runtime/spiff.py): the flows leaving an activity whose
outgoing sequence flows carry conditions or a default, as Camunda 7 leaves it.

SpiffWorkflow lets a task follow all of its outputs. When an activity (task, subprocess, call
activity, multi-instance body) has a conditional or default outgoing flow, the parser
(engine/bpmn_parser.py, `ActivityFlowParsing`) puts a `ConditionalLeave` between the activity and
its targets: an engine task without a BPMN id that runs once the activity completes, however it
completed (a person, a worker, a script, the end of a subprocess or of every instance of a body).
It takes every flow without a condition and every flow whose condition holds (in parallel), the
default flow only when no other was taken; when none can be taken it fails like a gateway's
condition, so the instance gets an incident at the activity and a retry evaluates the conditions
again. Conditions are evaluated by the script engine, exactly as the conditions of gateways.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer.default.task_spec import ConditionalGatewayConverter
from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.specs.MultiChoice import MultiChoice
from SpiffWorkflow.util.task import TaskState


class ConditionalLeave(BpmnTaskSpec, MultiChoice):
    """Chooses the flows leaving `activity` (its BPMN id). Its outputs are the flows' targets, each
    with its condition (None: always taken); `default_task_spec` names the default flow's target."""

    def __init__(self, wf_spec: Any, name: str, activity: str = "", default_task_spec: str | None = None,
                 bpmn_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(wf_spec, name, **kwargs)
        self.activity = activity
        self.default_task_spec = default_task_spec
        self.bpmn_name = bpmn_name  # the activity's name: what an incident here is called

    def _run_hook(self, my_task: Any) -> bool:
        # As SpiffWorkflow's own choices (MultiChoice, InclusiveGateway) choose: `_matches` evaluates a
        # flow's condition through the workflow's script engine (the gateways' path); `_sync_children`
        # keeps the chosen targets and drops the predicted others; `_predict` lays out what follows them.
        spec = my_task.workflow.spec
        taken = [spec.get_task_spec_from_name(name) for condition, name in self.cond_task_specs
                 if name != self.default_task_spec and (condition is None or condition._matches(my_task))]
        if not taken:
            if self.default_task_spec is None:
                raise WorkflowTaskException(
                    f"No outgoing sequence flow for the element with id '{self.activity}' could be selected "
                    "for continuing the process", task=my_task)
            taken = [spec.get_task_spec_from_name(self.default_task_spec)]
        my_task._sync_children(taken, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.FUTURE | TaskState.PREDICTED_MASK)
        return True


class ConditionalLeaveConverter(ConditionalGatewayConverter):
    """A `ConditionalLeave` as stored with a definition version's spec."""

    def to_dict(self, spec: ConditionalLeave) -> dict[str, Any]:
        dct = super().to_dict(spec)
        dct.update(activity=spec.activity, default_task_spec=spec.default_task_spec)
        return dct


def failed_activity(task: Any) -> str | None:
    """The activity whose outgoing flows could not be chosen, when `task` is a failed `ConditionalLeave`:
    the diagram shows the incident there, where the token waits."""
    spec = task.task_spec
    return spec.activity if isinstance(spec, ConditionalLeave) and task.state == TaskState.ERROR else None
