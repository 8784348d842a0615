"""SpiffWorkflow's Camunda parser, extended with the user-task attributes PDCA Flow needs.

SpiffWorkflow 3.2 reads lanes and ``camunda:formData`` (only when a formKey is present) but not
``camunda:assignee``, ``candidateGroups``, ``dueDate``, ``followUpDate`` or ``priority``. We keep
those raw texts in ``spec.extensions['pdca']`` (serialized with the spec by SpiffWorkflow) and
resolve them when a task becomes ready.

Business-rule tasks become `DecisionTask`s evaluated by engine/dmn: the parser is given each
decision's DMN document (`add_decision`) and the task spec keeps the one its decisionRef names.
Camunda extensions it leaves out (inputOutput, in/out, listeners, resultVariable, error variables,
initiator) are read by engine/camunda_extensions.py and kept in ``spec.extensions['camunda']`` by
`PdcaProcessParser`; multi-instance on any activity is built the Camunda way by every activity parser
(`CamundaMultiInstanceParsing`), and so are the flows leaving it (`ActivityFlowParsing`). The run-time
side is engine/runtime/camunda.py (and engine/runtime/spiff_flows.py for conditional flows).
"""

from __future__ import annotations

from typing import Any

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
    EventDefinitionParser,
    ReceiveTaskParser,
)
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.parser.task_parsers import GatewayParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent, ReceiveTask, StartEvent
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import (
    CAMUNDA_MODEL_NS,
    CallActivityParser,
    CamundaTaskParser,
    UserTaskParser,
)
from SpiffWorkflow.camunda.specs.user_task import Form, UserTask

from engine.camunda_extensions import B, read_extensions
from engine.external_task_model import ExternalMixin, is_external
from engine.external_task_model import parser_classes as external_parser_classes
from engine.runtime.camunda import (
    PdcaCallActivity,
    PdcaParallelMultiInstance,
    PdcaSequentialMultiInstance,
    with_result_variable,
)
from engine.runtime.spiff import ConditionalLeave, DecisionTask
from engine.thrown_events import ThrownMessageEventDefinition, ThrownSignalEventDefinition

CAMUNDA = "{" + CAMUNDA_MODEL_NS + "}"
USER_TASK_ATTRIBUTES = ("assignee", "candidateGroups", "candidateUsers", "dueDate", "followUpDate", "priority",
                        "formKey", "formRef")


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


class PdcaBusinessRuleTaskParser(ExternalMixin, CamundaTaskParser):
    """A decision (engine/dmn), or an external task when camunda:type=\"external\"."""

    @staticmethod
    def get_decision_ref(node: Any) -> str:  # SpiffWorkflow's DMN parser lists references through this
        return (node.get(CAMUNDA + "decisionRef") or "").strip()

    def create_task(self) -> Any:
        if is_external(self.node):
            return super().create_task()  # ExternalMixin: an ExternalTask
        ref = (self.node.get(CAMUNDA + "decisionRef") or "").strip()
        document = self.process_parser.parser.decision_documents.get(ref)
        if document is None:
            raise ValidationException(f"decision '{ref}' is not deployed", node=self.node, file_name=self.filename)
        return DecisionTask(self.spec, self.bpmn_id, decision_ref=ref, decision_xml=document,
                            result_variable=(self.node.get(CAMUNDA + "resultVariable") or "").strip() or None,
                            map_decision_result=(self.node.get(CAMUNDA + "mapDecisionResult") or "").strip() or None,
                            **self.bpmn_attributes)
# ---------------------------------------------------------------------- Camunda extensions
# What SpiffWorkflow's Camunda parser leaves out (engine/camunda_extensions.py reads it; the runtime
# acts on it in engine/runtime/camunda.py): kept per element in spec.extensions['camunda'].

class CamundaMultiInstanceParsing:
    """Multi-instance on any activity the Camunda way (collection/elementVariable or loopCardinality,
    completionCondition), built as engine.runtime.camunda's multi-instance body."""

    def _add_multiinstance_task(self, loop_characteristics: Any) -> None:
        sequential = loop_characteristics.get("isSequential") == "true"
        cardinality = self.xpath("./bpmn:multiInstanceLoopCharacteristics/bpmn:loopCardinality")
        cardinality = cardinality[0].text if cardinality else None
        collection = loop_characteristics.get(CAMUNDA + "collection")
        if cardinality is None and collection is None:
            self.raise_validation_exception("A multi-instance activity needs camunda:collection or loopCardinality")
        condition = self.xpath("./bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition")
        condition = condition[0].text if condition and (condition[0].text or "").strip() else None
        original = self.spec.task_specs.pop(self.task.name)
        body = PdcaSequentialMultiInstance if sequential else PdcaParallelMultiInstance
        self.task = body(self.spec, original.name, task_spec="", cardinality=cardinality, condition=condition,
                         description="Sequential MultiInstance" if sequential else "Parallel MultiInstance")
        self.task.extensions = {"camunda": {"kind": "multiInstance", "mi": {
            "collection": collection, "element_variable": loop_characteristics.get(CAMUNDA + "elementVariable")}}}
        self._copy_task_attrs(original, loop_characteristics)


class ActivityFlowParsing:
    """The sequence flows leaving an activity, as Camunda 7 takes them: every flow without a condition
    (several leave in parallel: BPMN's uncontrolled flow; SpiffWorkflow refused a second flow of any
    activity), every flow whose condition holds, the activity's `default` flow only when no other was
    taken. With a condition or a default among them, a `ConditionalLeave` (engine/runtime/spiff_flows.py)
    sits between the activity and the flows' targets and chooses at run time; without, the targets
    follow the activity directly, as before. Gateways keep their own rules."""

    def handles_multiple_outgoing(self) -> bool:
        return True

    def connect_outgoing(self, outgoing_task: Any, sequence_flow_node: Any, is_default: bool) -> None:
        if isinstance(self, GatewayParser) or not self._leaves_conditionally():
            super().connect_outgoing(outgoing_task, sequence_flow_node, is_default)  # type: ignore[misc]
            return
        leave = self.spec.task_specs.get(f"{self.task.name}.Leave")
        if leave is None:
            leave = ConditionalLeave(self.spec, f"{self.task.name}.Leave", activity=self.bpmn_id,
                                     bpmn_name=self.node.get("name") or self.bpmn_id, lane=self.task.lane)
            self.task.connect(leave)
        if is_default:  # Camunda ignores a condition on the default flow
            leave.connect(outgoing_task)
            leave.default_task_spec = outgoing_task.name
        else:
            leave.connect_outgoing_if(self.parse_condition(sequence_flow_node), outgoing_task)

    def _leaves_conditionally(self) -> bool:
        flows = self.process_parser.get_outgoing_sequence_flows(self.bpmn_id)
        default = self.node.get("default")
        if default and default not in {f.get("id") for f in flows}:
            self.raise_validation_exception(f"the default flow '{default}' is not a sequence flow leaving "
                                            f"this activity")
        return bool(default) or any(f.find(B + "conditionExpression") is not None for f in flows)


class PdcaProcessParser(ProcessParser):
    """Keeps each element's Camunda extensions on its spec once the process is parsed."""

    def _parse(self) -> None:
        super()._parse()
        errors = {e.get("id"): e for e in self.document_root.iter(B + "error")}
        # Listeners of sequence flows ("take") run when the flow's target starts, coming from its source.
        taken: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for flows in self.outgoing_sequence_flows.values():
            for flow in flows:
                listeners = read_extensions(flow).get("execution_listeners") or []
                if listeners:
                    taken.setdefault(flow.get("targetRef"), {}).setdefault(flow.get("sourceRef"), []).extend(
                        {**listener, "event": "take"} for listener in listeners)
        for spec in list(self.spec.task_specs.values()):
            node = self.get_node_by_id(getattr(spec, "bpmn_id", None) or "")
            if node is None or isinstance(spec, (PdcaSequentialMultiInstance, PdcaParallelMultiInstance)):
                continue
            ext = read_extensions(node)
            if spec.bpmn_id in taken:
                ext["take_listeners"] = taken[spec.bpmn_id]
            for definition in node.findall(B + "errorEventDefinition"):
                error = errors.get(definition.get("errorRef") or "")
                if error is not None and error.get(CAMUNDA + "errorMessage"):
                    ext["error_message"] = error.get(CAMUNDA + "errorMessage")
            if len(ext) == 1 and ext["kind"] != "callActivity":
                continue  # nothing to act on: no hooks for this element
            if ext.get("result_variable") and ext["kind"] == "scriptTask" and getattr(spec, "script", None):
                spec.script = with_result_variable(spec.script, ext["result_variable"])
            spec.extensions = {**(getattr(spec, "extensions", None) or {}), "camunda": ext}


_ACTIVITY: dict[type, type] = {}  # activity parser -> its Camunda subclass


def _as_camunda_activity(parser_class: type) -> type:
    if parser_class not in _ACTIVITY:
        _ACTIVITY[parser_class] = type(f"Pdca{parser_class.__name__}",
                                      (CamundaMultiInstanceParsing, ActivityFlowParsing, parser_class), {})
    return _ACTIVITY[parser_class]


class PdcaReceiveTaskParser(ActivityFlowParsing, CamundaEventDefinitionParser, ReceiveTaskParser):
    """A receive task with the Camunda message definition every other message event gets: the generic one
    SpiffWorkflow's Camunda parser leaves it with is not in the Camunda serializer (it could not be saved)
    and would not match messages sent to the Camunda catch events. It is an activity: its outgoing flows
    are taken as any activity's."""

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
        **external_parser_classes(full_tag),  # camunda:type="external" (engine/external_task_model.py)
        full_tag("businessRuleTask"): (PdcaBusinessRuleTaskParser, DecisionTask),
        full_tag("callActivity"): (CallActivityParser, PdcaCallActivity),
        full_tag("receiveTask"): (PdcaReceiveTaskParser, ReceiveTask),
        full_tag("startEvent"): (PdcaStartEventParser, StartEvent),
        full_tag("endEvent"): (PdcaEndEventParser, EndEvent),
        full_tag("intermediateThrowEvent"): (PdcaIntermediateThrowEventParser, IntermediateThrowEvent),
    }
    PROCESS_PARSER_CLASS = PdcaProcessParser

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decision_documents: dict[str, str] = {}

    def add_decision(self, decision_id: str, document: str) -> None:
        """The DMN document (the decision, what it requires, no diagram) a decisionRef resolves to."""
        self.decision_documents[decision_id] = document

    def _get_parser_class(self, tag: str) -> tuple[Any, Any]:
        # Every activity parser learns Camunda's multi-instance (collection, cardinality, counters) and
        # outgoing flows (several at once, conditional and default flows).
        parser_class, spec_class = super()._get_parser_class(tag)
        if parser_class is not None and issubclass(parser_class, TaskParser) and \
                not issubclass(parser_class, EventDefinitionParser):
            parser_class = _as_camunda_activity(parser_class)
        return parser_class, spec_class
