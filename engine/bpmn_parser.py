"""SpiffWorkflow's Camunda parser, extended with the user-task attributes PDCA Flow needs.

SpiffWorkflow 3.2 reads lanes and ``camunda:formData`` (only when a formKey is present) but not
``camunda:assignee``, ``candidateGroups``, ``dueDate``, ``followUpDate`` or ``priority``. We keep
those raw texts in ``spec.extensions['pdca']`` (serialized with the spec by SpiffWorkflow) and
resolve them when a task becomes ready.

Business-rule tasks become `DecisionTask`s evaluated by engine/dmn: the parser is given each
decision's DMN document (`add_decision`) and the task spec keeps the one its decisionRef names.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, CamundaTaskParser, UserTaskParser
from SpiffWorkflow.camunda.specs.user_task import Form, UserTask

from engine.runtime.spiff import DecisionTask

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


class PdcaBusinessRuleTaskParser(CamundaTaskParser):
    @staticmethod
    def get_decision_ref(node: Any) -> str:  # SpiffWorkflow's DMN parser lists references through this
        return (node.get(CAMUNDA + "decisionRef") or "").strip()

    def create_task(self) -> DecisionTask:
        ref = (self.node.get(CAMUNDA + "decisionRef") or "").strip()
        document = self.process_parser.parser.decision_documents.get(ref)
        if document is None:
            raise ValidationException(f"decision '{ref}' is not deployed", node=self.node, file_name=self.filename)
        return DecisionTask(self.spec, self.bpmn_id, decision_ref=ref, decision_xml=document,
                            result_variable=(self.node.get(CAMUNDA + "resultVariable") or "").strip() or None,
                            map_decision_result=(self.node.get(CAMUNDA + "mapDecisionResult") or "").strip() or None,
                            **self.bpmn_attributes)


class PdcaParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (PdcaUserTaskParser, UserTask),
        full_tag("businessRuleTask"): (PdcaBusinessRuleTaskParser, DecisionTask),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decision_documents: dict[str, str] = {}

    def add_decision(self, decision_id: str, document: str) -> None:
        """The DMN document (the decision, what it requires, no diagram) a decisionRef resolves to."""
        self.decision_documents[decision_id] = document
