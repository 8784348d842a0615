"""SpiffWorkflow's Camunda parser, extended with the user-task attributes PDCA Flow needs.

SpiffWorkflow 3.2 reads lanes and ``camunda:formData`` (only when a formKey is present) but not
``camunda:assignee``, ``candidateGroups``, ``dueDate``, ``followUpDate`` or ``priority``. We keep
those raw texts in ``spec.extensions['pdca']`` (serialized with the spec by SpiffWorkflow) and
resolve them when a task becomes ready.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    TIMER_EVENT_XPATH,
    ReceiveTaskParser,
)
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent, ReceiveTask, StartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, UserTaskParser
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessageEventDefinition
from SpiffWorkflow.camunda.specs.user_task import Form, UserTask

CAMUNDA = "{" + CAMUNDA_MODEL_NS + "}"
USER_TASK_ATTRIBUTES = ("assignee", "candidateGroups", "candidateUsers", "dueDate", "followUpDate", "priority")


class PdcaUserTaskParser(UserTaskParser):
    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        attrs = {name: self.node.get(CAMUNDA + name) for name in USER_TASK_ATTRIBUTES if self.node.get(CAMUNDA + name)}
        attrs["lane"] = self.lane
        docs = self.xpath("./bpmn:documentation")
        if docs and (docs[0].text or "").strip():
            attrs["documentation"] = docs[0].text.strip()
        extensions["pdca"] = attrs
        return extensions

    def get_form(self) -> Form:
        # Camunda Modeler writes formData without a formKey; read the fields either way.
        form = super().get_form()
        if not form.fields and self.xpath(".//camunda:formData/camunda:formField"):
            original = self.node.get(CAMUNDA + "formKey")
            self.node.set(CAMUNDA + "formKey", "embedded")
            try:
                form = super().get_form()
            finally:
                if original is None:
                    del self.node.attrib[CAMUNDA + "formKey"]
        return form


class PdcaReceiveTaskParser(CamundaEventDefinitionParser, ReceiveTaskParser):
    """A receive task with the Camunda message definition every other message event gets: the generic one
    SpiffWorkflow's Camunda parser leaves it with is not in the Camunda serializer (it could not be saved)
    and would not match messages sent to the Camunda catch events."""

    def create_task(self) -> Any:
        return ReceiveTaskParser.create_task(self)


class PdcaStartEventParser(CamundaStartEventParser):
    """Start events of event subprocesses: SpiffWorkflow 3.2 reads no error or escalation definition on a
    start event (the error event subprocess then started at once, as a plain one), and never interrupts.
    We read both definitions, and keep whether the start interrupts its scope (`isInterrupting`, true
    unless set to false) for the runtime (engine/runtime/spiff.py), which cancels the scope as Camunda does."""

    def create_task(self) -> Any:
        if not self._in_event_subprocess():
            return super().create_task()
        definition = self.get_event_definition([MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH,
                                                CONDITIONAL_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH])
        task = self._create_task(definition)
        self.spec.start.connect(task)
        return task

    def _in_event_subprocess(self) -> bool:
        parent = self.node.getparent()
        return parent is not None and parent.get("triggeredByEvent") == "true"

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        extensions = super().parse_extensions(node)
        if self._in_event_subprocess():
            extensions["pdca_interrupting"] = self.node.get("isInterrupting", "true").lower() != "false"
        return extensions


class ThrownMessageEventDefinition(CamundaMessageEventDefinition):
    """A message throw or message end event. SpiffWorkflow's Camunda definition evaluates
    `camunda:expression` for the payload and fails when there is none (what Camunda Modeler writes for
    a plain message throw); then the payload is the thrower's variables. The event carries a plain
    Camunda definition, so the instance's own catches (matched by class) still take it."""

    def throw(self, my_task: Any) -> None:
        if self.expression:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
        else:
            value = deepcopy(my_task.data)
        definition = CamundaMessageEventDefinition(self.name, self.correlation_properties, self.expression,
                                                   self.result_var)
        my_task.workflow.top_workflow.catch(BpmnEvent(definition, payload={"payload": value,
                                                                           "result_var": self.result_var}))


class ThrownSignalEventDefinition(SignalEventDefinition):
    """A signal throw or signal end event. A signal is a broadcast: SpiffWorkflow hands it to the
    instance's own catches and passes it on only when none took it; this throw always passes it on, so
    engine/runtime/events.py delivers it to the other instances too (Camunda's semantics)."""

    def throw(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        event = BpmnEvent(SignalEventDefinition(self.name), payload=deepcopy(my_task.data))
        top.catch(event)
        if not any(e is event for e in top.bpmn_events):
            top.bpmn_events.append(event)


class _ThrowingParser(CamundaEventDefinitionParser):
    def parse_message_event(self, message_event: Any) -> Any:
        parsed = super().parse_message_event(message_event)
        return ThrownMessageEventDefinition(parsed.name, parsed.correlation_properties, parsed.expression,
                                            parsed.result_var)

    def parse_signal_event(self, signal_event: Any) -> Any:
        return ThrownSignalEventDefinition(super().parse_signal_event(signal_event).name)


class PdcaEndEventParser(_ThrowingParser, CamundaEndEventParser):
    """End events, with the signal end event SpiffWorkflow 3.2 reads as a plain end event."""

    def create_task(self) -> Any:
        definition = self.get_event_definition([MESSAGE_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH,
                                                ESCALATION_EVENT_XPATH, TERMINATION_EVENT_XPATH, SIGNAL_EVENT_XPATH])
        task = self._create_task(definition)
        task.connect(self.spec.end)
        return task


class PdcaIntermediateThrowEventParser(_ThrowingParser, CamundaIntermediateThrowEventParser):
    pass


class PdcaParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (PdcaUserTaskParser, UserTask),
        full_tag("receiveTask"): (PdcaReceiveTaskParser, ReceiveTask),
        full_tag("startEvent"): (PdcaStartEventParser, StartEvent),
        full_tag("endEvent"): (PdcaEndEventParser, EndEvent),
        full_tag("intermediateThrowEvent"): (PdcaIntermediateThrowEventParser, IntermediateThrowEvent),
    }
