"""SpiffWorkflow's Camunda parser, extended with the user-task attributes PDCA Flow needs.

SpiffWorkflow 3.2 reads lanes and ``camunda:formData`` (only when a formKey is present) but not
``camunda:assignee``, ``candidateGroups``, ``dueDate``, ``followUpDate`` or ``priority``. We keep
those raw texts in ``spec.extensions['pdca']`` (serialized with the spec by SpiffWorkflow) and
resolve them when a task becomes ready.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, UserTaskParser
from SpiffWorkflow.camunda.specs.user_task import Form, UserTask

from engine.external_task_model import parser_classes as external_parser_classes

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


class PdcaParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (PdcaUserTaskParser, UserTask),
        **external_parser_classes(full_tag),  # camunda:type="external" (engine/external_task_model.py)
    }
