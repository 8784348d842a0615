"""engine/cases.py: what a process declares as its case (case.title / case.summary properties)."""

from __future__ import annotations

from lxml import etree

from engine.cases import FALLBACK, case_columns, case_of, declared_case
from engine.definition_checks import BPMN_NS
from engine.forms import CAMUNDA_NS

MODEL = f"""<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:camunda="{CAMUNDA_NS}">
  <bpmn:process id="p">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="case.title" value="customer_name, product" />
      <camunda:property name="case.summary" value="product, severity,order.number" />
    </camunda:properties></bpmn:extensionElements>
    <bpmn:startEvent id="s"><bpmn:extensionElements><camunda:formData>
      <camunda:formField id="customer_name" label="Your name" />
      <camunda:formField id="product" label="Your product" />
    </camunda:formData></bpmn:extensionElements></bpmn:startEvent>
    <bpmn:userTask id="t"><bpmn:extensionElements><camunda:formData>
      <camunda:formField id="product" label="Product concerned" />
    </camunda:formData></bpmn:extensionElements></bpmn:userTask>
  </bpmn:process>
  <bpmn:process id="other" />
</bpmn:definitions>"""


def test_declared_title_and_labelled_summary():
    root = etree.fromstring(MODEL.encode())
    declaration = declared_case(root, "p", BPMN_NS, CAMUNDA_NS)
    assert declaration.title == ("customer_name", "product")
    # a task's label wins over the (customer-worded) start form's; no label: the name made readable
    assert declaration.summary == (("product", "Product concerned"), ("severity", "Severity"),
                                   ("order.number", "Order number"))
    case = case_of("C-1", {"customer_name": "Ann  Example", "product": "Kettle", "severity": True,
                           "order": {"number": 7}}, declaration)
    assert case["title"] == "Ann Example — Kettle"
    assert case["summary"] == "Product concerned: Kettle · Severity: Yes · Order number: 7"
    columns = case_columns("C-1", {"customer_name": "Ann", "product": "Kettle"}, declaration)
    assert columns["case_text"] == "c-1 | ann — kettle | product concerned: kettle | ann"
    assert declared_case(root, "other", BPMN_NS, CAMUNDA_NS) is FALLBACK


def test_fallback_and_empty_cases():
    assert case_of(None, {"supplier_name": "Acme", "category": "packaging"})["title"] == "Acme"
    assert case_columns(None, {}) == {"case_title": None, "case_summary": None, "case_text": None}
    long = case_of("R", {"customer_name": "x" * 500})
    assert len(long["title"]) == 120  # one value is kept short
