"""Message and signal throws as Camunda 7 runs them (the definitions our parser gives throw events and
message/signal end events, engine/bpmn_parser.py; the runtime's delivery is engine/runtime/events.py).

Their own module, so the parser and the SpiffWorkflow adapter (which registers them with the
serializer) can both import them without importing each other.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessageEventDefinition


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
