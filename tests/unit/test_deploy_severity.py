"""Deploy errors (the file is refused) apart from warnings (the file deploys; what is ignored or
defaulted at run time is named); link events; the Operaton namespace."""

from __future__ import annotations

import pytest

from engine.definitions import read_source
from tests.unit.test_deploy_support import BPMN_HEAD, bpmn, line_of, linear, only, process_xml, user_task
from tests.unit.test_deploy_validation import refused

OPERATON_HEAD = BPMN_HEAD.replace('xmlns:camunda="http://camunda.org/schema/1.0/bpmn"',
                                  'xmlns:operaton="http://operaton.org/schema/1.0/bpmn"')


def test_warnings_and_errors_are_told_apart():
    content = linear("mixed", '<bpmn:userTask id="Nobody" />',
                     '<bpmn:serviceTask id="Java" camunda:delegateExpression="${erp}" />')
    source = read_source("mixed.bpmn", content)
    assert [p.element for p in source.problems] == ["serviceTask Java"]
    assert not source.problems[0].is_warning and "warning" not in str(source.problems[0])
    warning = only(source.warnings)
    assert warning.element == "userTask Nobody" and warning.severity == "warning"
    line = line_of(content, 'id="Nobody"')
    assert str(warning).startswith(f"mixed.bpmn:{line}: userTask Nobody: warning: ")


@pytest.mark.parametrize("attrs", ['camunda:candidateUsers="rita.reviewer"', 'camunda:assignee="${owner}"',
                                   'camunda:candidateGroups="reviewers"'])
def test_any_assignment_attribute_means_no_warning(attrs):
    source = read_source("a.bpmn", linear("a", f'<bpmn:userTask id="T" {attrs} />'))
    assert source.problems == [] and source.warnings == []


def test_failed_job_retry_cycle_is_ignored_with_a_warning():
    node = ('<bpmn:userTask id="T" camunda:candidateGroups="g"><bpmn:extensionElements>'
            "<camunda:failedJobRetryTimeCycle>R5/PT5M</camunda:failedJobRetryTimeCycle>"
            "</bpmn:extensionElements></bpmn:userTask>")
    warning = only(read_source("r.bpmn", linear("r", node)).warnings)
    assert warning.element == "userTask T" and "failedJobRetryTimeCycle is ignored" in warning.message


@pytest.mark.parametrize(("node", "why"), [
    ('<bpmn:serviceTask id="X" camunda:expression="${erp.post(invoice)}" />', "camunda:expression"),
    ('<bpmn:serviceTask id="X" />', 'camunda:type="external"'),
    ('<bpmn:businessRuleTask id="X" camunda:class="com.acme.Rules" />', "Java class"),
    ('<bpmn:scriptTask id="X" scriptFormat="javascript"><bpmn:script>1</bpmn:script></bpmn:scriptTask>',
     'script format "javascript" cannot run'),
    ('<bpmn:scriptTask id="X" scriptFormat="python" camunda:resource="deployment://a.py" />', "camunda:resource"),
    ('<bpmn:intermediateThrowEvent id="X"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent>',
     "compensation is not supported"),
])
def test_what_cannot_run_is_an_error_with_the_reason(runtime, node, why):
    content = linear("cannot", node)
    problem = only(refused(runtime, "cannot.bpmn", content))
    assert problem.element.endswith(" X") and why in problem.message
    assert problem.line == line_of(content, 'id="X"')


def test_a_link_throw_without_its_catch_is_refused(runtime):
    throw = '<bpmn:intermediateThrowEvent id="Jump"><bpmn:linkEventDefinition name="Nowhere" /></bpmn:intermediateThrowEvent>'
    content = linear("links", throw)
    problem = only(refused(runtime, "links.bpmn", content))
    assert problem.element == "intermediateThrowEvent Jump" and "'Nowhere'" in problem.message
    assert problem.line == line_of(content, 'id="Jump"')


def test_two_link_catches_of_one_name_are_refused(runtime):
    catch = ('<bpmn:intermediateCatchEvent id="{0}"><bpmn:linkEventDefinition name="L" /></bpmn:intermediateCatchEvent>'
             '<bpmn:sequenceFlow id="{0}_out" sourceRef="{0}" targetRef="end" />')
    content = bpmn(process_xml("links", user_task("T"), extra="    " + catch.format("C1") + catch.format("C2")))
    problems = refused(runtime, "links.bpmn", content)
    assert any(p.element == "intermediateCatchEvent C2" and "two link catch events" in p.message for p in problems)


def test_links_resolve_inside_a_subprocess_scope(runtime, lead):
    inner = ('<bpmn:subProcess id="Sub"><bpmn:startEvent id="s2" />'
             '<bpmn:intermediateThrowEvent id="Jump"><bpmn:linkEventDefinition name="L" /></bpmn:intermediateThrowEvent>'
             '<bpmn:intermediateCatchEvent id="Land"><bpmn:linkEventDefinition name="L" /></bpmn:intermediateCatchEvent>'
             '<bpmn:scriptTask id="Mark"><bpmn:script>marked = True</bpmn:script></bpmn:scriptTask>'
             '<bpmn:endEvent id="e2" />'
             '<bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="Jump" />'
             '<bpmn:sequenceFlow id="g2" sourceRef="Land" targetRef="Mark" />'
             '<bpmn:sequenceFlow id="g3" sourceRef="Mark" targetRef="e2" /></bpmn:subProcess>')
    report = runtime.deploy([("sub.bpmn", linear("sub_links", inner))])
    assert report.ok, report.problems
    instance = runtime.start("sub_links", {}, lead)
    assert instance.status == "completed" and instance.data["marked"] is True


def test_operaton_attributes_read_as_camunda():
    content = (OPERATON_HEAD + process_xml(
        "op", '<bpmn:userTask id="T" operaton:candidateGroups="reviewers" />',
        '<bpmn:serviceTask id="J" operaton:class="com.acme.Foo" />') + "</bpmn:definitions>\n").encode()
    source = read_source("op.bpmn", content)
    assert source.warnings == []  # operaton:candidateGroups counts
    assert [p.element for p in source.problems] == ["serviceTask J"]
    assert "camunda:class" in source.problems[0].message
    assert b"operaton:candidateGroups" in source.content  # the stored file is the user's


@pytest.mark.parametrize("attr", ['camunda:formKey="embedded:app:forms/a.html"', 'camunda:formRef="review-form"'])
def test_a_form_key_or_form_ref_without_fields_takes_any_variables(runtime, lead, attr):
    report = runtime.deploy([("fk.bpmn", linear("fk", f'<bpmn:userTask id="T" camunda:candidateGroups="g" {attr} />'))])
    assert report.ok, report.problems
    instance = runtime.start("fk", {}, lead)
    (task,) = [t for t in instance.tasks if t.state == "open"]
    assert [f["type"] for f in task.form] == ["variables"]
    done = runtime.complete(task.id, lead, {"anything": [1, 2], "nested.value": "x"})
    assert done.status == "completed" and done.data["anything"] == [1, 2] and done.data["nested"] == {"value": "x"}


def test_a_task_without_form_key_still_refuses_undeclared_variables(runtime, lead):
    from engine.errors import FormValidationError

    runtime.deploy([("nf.bpmn", linear("nf", '<bpmn:userTask id="T" camunda:candidateGroups="g" />'))])
    instance = runtime.start("nf", {}, lead)
    (task,) = [t for t in instance.tasks if t.state == "open"]
    with pytest.raises(FormValidationError) as info:
        runtime.complete(task.id, lead, {"anything": 1})
    assert info.value.details == [{"field": "anything", "message": "is not a field of this form"}]


def test_an_empty_condition_deploys_with_a_warning_naming_the_flow():
    """Camunda Modeler writes an empty conditionExpression when a flow is made conditional and left blank."""
    content = linear("e", user_task("T")).replace(
        b'<bpmn:sequenceFlow id="f1" sourceRef="T" targetRef="end" />',
        b'<bpmn:sequenceFlow id="f1" sourceRef="T" targetRef="end"><bpmn:conditionExpression /></bpmn:sequenceFlow>')
    source = read_source("e.bpmn", content)
    assert source.problems == []
    warning = only(source.warnings)
    assert warning.element == "sequenceFlow f1" and "condition is empty" in warning.message
    assert warning.line == line_of(content, 'id="f1"')
