"""Deploy checks of Camunda Connect's `camunda:connector`: http-connector and mail-send deploy (as
external tasks of the built-in connectors' topics); any other connector id, a connector where it
cannot run, a missing or unsupported parameter and a script in a language we cannot run are refused,
each naming the element and the reason."""

from __future__ import annotations

import pytest

from engine.definitions import read_source
from engine.expressions import template_parts
from tests.unit.test_deploy_support import line_of, linear, only


def connector(connector_id: str, *parameters: str, tag: str = "serviceTask", attrs: str = "") -> str:
    io = f"<camunda:inputOutput>{''.join(parameters)}</camunda:inputOutput>" if parameters else ""
    ident = f"<camunda:connectorId>{connector_id}</camunda:connectorId>" if connector_id else ""
    return (f'<bpmn:{tag} id="call" name="Call the ERP"{attrs}><bpmn:extensionElements><camunda:connector>'
            f"{io}{ident}</camunda:connector></bpmn:extensionElements></bpmn:{tag}>")


def param(name: str, value: str, kind: str = "input") -> str:
    return f'<camunda:{kind}Parameter name="{name}">{value}</camunda:{kind}Parameter>'


HTTP = (param("url", "${erp}/orders/${order}"), param("method", "POST"),
        param("headers", '<camunda:map><camunda:entry key="Content-Type">application/json</camunda:entry></camunda:map>'),
        param("payload", '{"order": "${order}"}'))


def problems(content: bytes) -> list:
    return read_source("c.bpmn", content).problems


@pytest.mark.parametrize("tag", ["serviceTask", "sendTask", "businessRuleTask"])
def test_http_connector_deploys_on_service_send_and_business_rule_tasks(tag):
    content = linear("p", connector("http-connector", *HTTP, param("status", "${statusCode}", "output"), tag=tag))
    assert problems(content) == []


def test_mail_send_deploys():
    content = linear("p", connector("mail-send", param("to", "${customer_email}"), param("subject", "Order ${order}"),
                                    param("text", "Dear ${name},"), tag="sendTask"))
    assert problems(content) == []


def test_an_unsupported_connector_id_is_refused_naming_it():
    content = linear("p", connector("soap-http-connector", *HTTP))
    problem = only(problems(content))
    assert problem.element == 'serviceTask call "Call the ERP"'
    assert problem.line == line_of(content, "<camunda:connector>")
    assert problem.message.startswith("connector 'soap-http-connector' cannot run here: PDCA Flow serves "
                                      "Camunda Connect's http-connector and mail-send only")


def test_a_connector_without_an_id_is_refused():
    problem = only(problems(linear("p", connector("", *HTTP))))
    assert "camunda:connector has no camunda:connectorId" in problem.message


@pytest.mark.parametrize("language", ["javascript", "groovy"])
def test_a_script_in_a_language_we_cannot_run_is_refused_naming_element_and_language(language):
    script = f'<camunda:script scriptFormat="{language}">S(response).prop("id").stringValue()</camunda:script>'
    problem = only(problems(linear("p", connector("http-connector", *HTTP, param("id", script, "output")))))
    assert problem.element == 'serviceTask call "Call the ERP"'
    assert problem.message.startswith(f"camunda:outputParameter 'id': script format \"{language}\" cannot run")


def test_a_python_script_output_compiles_and_a_bad_one_is_refused():
    good = '<camunda:script scriptFormat="python">statusCode == 200</camunda:script>'
    assert problems(linear("p", connector("http-connector", *HTTP, param("ok", good, "output")))) == []
    bad = '<camunda:script scriptFormat="python">statusCode ==</camunda:script>'
    problem = only(problems(linear("p", connector("http-connector", *HTTP, param("ok", bad, "output")))))
    assert "camunda:outputParameter 'ok'" in problem.message and "does not compile" in problem.message


def test_each_expression_of_a_composite_text_compiles():
    content = linear("p", connector("http-connector", param("url", "${erp}/orders/${order +}"),
                                    param("method", "GET")))
    problem = only(problems(content))
    assert "camunda:inputParameter 'url' does not compile" in problem.message


def test_http_connector_needs_url_and_method():
    found = problems(linear("p", connector("http-connector", param("payload", "x"))))
    assert sorted(p.message for p in found) == [
        "http-connector needs the input parameter 'method' (camunda:inputOutput of the connector)",
        "http-connector needs the input parameter 'url' (camunda:inputOutput of the connector)"]


def test_an_unknown_http_method_is_refused():
    problem = only(problems(linear("p", connector("http-connector", param("url", "http://erp/"),
                                                  param("method", "FETCH")))))
    assert problem.message.startswith("http-connector method 'FETCH' is not supported")


def test_a_connector_beside_another_implementation_is_refused():
    content = linear("p", connector("http-connector", *HTTP, attrs=' camunda:type="external" camunda:topic="erp"'))
    problem = only(problems(content))
    assert problem.message == "camunda:type and camunda:connector are two implementations of one task; keep one"


def test_a_connector_on_a_message_throw_event_is_refused():
    event = ('<bpmn:intermediateThrowEvent id="notify"><bpmn:messageEventDefinition id="m">'
             "<bpmn:extensionElements><camunda:connector><camunda:connectorId>http-connector</camunda:connectorId>"
             "</camunda:connector></bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateThrowEvent>")
    problem = only(problems(linear("p", event)))
    assert problem.element == "intermediateThrowEvent notify"
    assert problem.message == ("camunda:connector 'http-connector' runs here only on service, send and business rule "
                               "tasks, not on a messageEventDefinition of intermediateThrowEvent; move it onto a send "
                               "or service task")


def test_mail_send_attachments_are_refused_and_the_sender_is_ignored_with_a_warning():
    content = linear("p", connector("mail-send", param("to", "a@example.com"), param("subject", "S"),
                                    param("text", "T"), param("from", "me@example.com"),
                                    param("fileNames", "/tmp/report.pdf"), tag="sendTask"))
    source = read_source("c.bpmn", content)
    problem = only([p for p in source.problems if not p.is_warning])
    assert problem.message.startswith("mail-send input parameter 'fileNames': attachments read from files")
    warning = only(source.warnings)
    assert warning.message == "mail-send input parameter 'from' is ignored: the sender is the configured SMTP_FROM"


def test_template_parts():
    assert template_parts("${erp}/orders/${id}") == [(True, "${erp}"), (False, "/orders/"), (True, "${id}")]
    assert template_parts('{"a": "${m["}"]}"}') == [(False, '{"a": "'), (True, '${m["}"]}'), (False, '"}')]
    assert template_parts("${whole}") is None and template_parts("  ${whole} ") is None
    assert template_parts("no expression {here}") is None
