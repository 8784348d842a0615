"""Camunda Connect's `camunda:connector` (engine/camunda_connect.py) served by the built-in connectors,
end to end on SQLite and PostgreSQL: a Camunda Modeler model with http-connector tasks against a real
local HTTP server (the request as the server received it, output parameters into process variables,
the connector's own variables staying local), the allow-list refusing before any request, a 5xx
answer being a response (as in Camunda) rather than a failure, and mail-send through the outbox to a
real SMTP server."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine import clock
from engine import external_tasks as xt
from engine.connectors import run_connectors
from engine.notifications import OutboxPolicy, deliver_outbox
from engine.settings import Settings
from engine.views import Actor
from tests.integration.test_scheduler_mail import smtp  # noqa: F401 (the aiosmtpd fixture)

MODELS = Path(__file__).parents[1] / "constructs" / "models"
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
VARIABLES = {"order": "A-17", "amount": 99.5, "express": True}


class Erp(BaseHTTPRequestHandler):
    """Records each request as received (method, path, headers, raw body) and answers JSON."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = []
    status: dict[str, int] = {}  # by method; 200 when not given

    def _record_and_answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Erp.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        if self.command == "POST":
            payload = {"id": "R-1", "received": json.loads(Erp.requests[-1][3] or b"null")}
        else:
            payload = {"order": self.path.rsplit("/", 1)[-1], "status": "delivered"}
        raw = json.dumps(payload).encode()
        self.send_response(Erp.status.get(self.command, 200))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _record_and_answer  # noqa: N815 (http.server hook names)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def erp():
    Erp.requests, Erp.status = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Erp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _settings(erp_url: str) -> Settings:
    return Settings(http_allow=(f"{erp_url}/orders",), http_timeout=5.0, connector_retries=2, connector_backoff=60,
                    http_headers=((f"{erp_url}/orders", (("X-Api-Key", "secret-key"),)),))


def _start(runtime, erp_url: str):
    clock.reset()
    runtime.deploy_paths([MODELS / "camunda_http_connector.bpmn"])
    return runtime.start("order_registration", {"erp_url": erp_url, **VARIABLES}, LEAD)


def test_post_then_get_map_the_response_through_output_parameters(runtime, erp):
    instance = _start(runtime, erp)
    done = run_connectors(runtime, "sched-1", _settings(erp))
    assert (done.completed, done.failed) == (2, 0)  # the POST, then (same pass) the GET it led to
    (post_method, post_path, post_headers, post_body), (get_method, get_path, get_headers, get_body) = Erp.requests
    assert (post_method, post_path) == ("POST", "/orders")
    assert json.loads(post_body) == {"order": "A-17", "amount": 99.5, "express": True}  # the payload template
    assert post_headers["Content-Type"] == "application/json" and post_headers["X-Order"] == "A-17"
    assert post_headers["X-Api-Key"] == "secret-key"  # configured for the prefix, not in the model
    assert (get_method, get_path, get_body) == ("GET", "/orders/A-17", b"")
    assert get_headers["Accept"] == "application/json"
    after = runtime.instance(instance.id)
    assert after.status == "completed"
    data = after.data
    assert (data["registration_status"], data["registration_id"]) == (200, "R-1")  # read with Camunda Spin's S()
    assert json.loads(data["registration"]) == {"id": "R-1", "received": {"order": "A-17", "amount": 99.5,
                                                                         "express": True}}  # the body as text
    assert (data["lookup_status"], data["erp_content_type"], data["delivered"]) == (200, "application/json", True)
    assert not {"statusCode", "response", "headers", "url", "method", "payload"} & set(data)  # connector-local
    assert run_connectors(runtime, "sched-1", _settings(erp)).completed == 0  # nothing is sent twice


def test_a_server_error_is_a_response_not_a_failure(runtime, erp):
    """Camunda's http-connector returns 4xx/5xx answers as responses (statusCode); the model decides."""
    Erp.status = {"POST": 500}
    instance = _start(runtime, erp)
    done = run_connectors(runtime, "sched-1", _settings(erp))
    assert (done.completed, done.failed, done.incidents) == (2, 0, [])
    data = runtime.instance(instance.id).data
    assert runtime.instance(instance.id).status == "completed"
    assert (data["registration_status"], data["lookup_status"]) == (500, 200)


def test_a_url_outside_the_allow_list_is_an_incident_and_no_request(runtime, erp):
    evil = erp.replace("127.0.0.1", "localhost")  # the same server, but not the allowed host
    instance = _start(runtime, evil)
    result = run_connectors(runtime, "sched-1", _settings(erp))
    assert (result.failed, result.incidents) == (1, [instance.id]) and Erp.requests == []
    stuck = runtime.instance(instance.id)
    assert stuck.status == "incident"
    assert f"{evil}/orders is not allowed: PDCAFLOW_HTTP_ALLOW does not list it" in stuck.incidents[0].message
    assert "registration_status" not in stuck.data


def test_an_unreachable_server_retries_then_an_incident(runtime, erp):
    instance = _start(runtime, "http://127.0.0.1:9/nothing-listens")  # allowed, but no server
    settings = Settings(http_allow=("http://127.0.0.1:9/",), http_timeout=2.0, connector_retries=2,
                        connector_backoff=60)
    try:
        assert run_connectors(runtime, "s", settings).failed == 1  # retries 2 -> 1, back off 60 s
        assert runtime.instance(instance.id).status != "incident"
        clock.advance(timedelta(seconds=61))
        assert run_connectors(runtime, "s", settings).incidents == [instance.id]
        assert "POST http://127.0.0.1:9/nothing-listens/orders failed" in \
            runtime.instance(instance.id).incidents[0].message
    finally:
        clock.reset()



def _one_task_model(process_id: str, task_id: str, task: str) -> bytes:
    """A process start -> `task` (its XML, with id `task_id`) -> end, as the tests below deploy it."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_{process_id}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="{task_id}" />
{task}
    <bpmn:sequenceFlow id="f2" sourceRef="{task_id}" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


MAIL_MODEL = _one_task_model("mail_send", "mail", """\
    <bpmn:sendTask id="mail" name="Confirm the order">
      <bpmn:extensionElements>
        <camunda:connector>
          <camunda:inputOutput>
            <camunda:inputParameter name="to">${customer_email}</camunda:inputParameter>
            <camunda:inputParameter name="cc">quality@example.com</camunda:inputParameter>
            <camunda:inputParameter name="bcc">archive@example.com</camunda:inputParameter>
            <camunda:inputParameter name="subject">Order ${order} confirmed</camunda:inputParameter>
            <camunda:inputParameter name="text">Dear ${name}, your order ${order} is on its way.</camunda:inputParameter>
            <camunda:outputParameter name="mailed_to">${customer_email}</camunda:outputParameter>
          </camunda:inputOutput>
          <camunda:connectorId>mail-send</camunda:connectorId>
        </camunda:connector>
      </bpmn:extensionElements>
    </bpmn:sendTask>
""")


def test_mail_send_goes_through_the_outbox(runtime, smtp):  # noqa: F811
    collector, _server, smtp_config = smtp
    clock.reset()
    runtime.deploy([("mail_send.bpmn", MAIL_MODEL)])
    instance = runtime.start("mail_send", {"customer_email": "ann@example.com", "order": "A-17", "name": "Ann"}, LEAD)
    assert run_connectors(runtime, "sched-1", Settings()).completed == 1
    after = runtime.instance(instance.id)
    assert after.status == "completed" and after.data["mailed_to"] == "ann@example.com"
    assert deliver_outbox(runtime.db, "sched-1", smtp_config, OutboxPolicy(backoff=timedelta(seconds=60))).sent == 3
    assert sorted(r for rcpts, _ in collector.messages for r in rcpts) == [
        "ann@example.com", "archive@example.com", "quality@example.com"]  # each address its own mail
    message = collector.messages[0][1]
    assert message["Subject"] == "Order A-17 confirmed"
    assert "Dear Ann, your order A-17 is on its way." in message.get_payload(decode=True).decode()


def test_a_business_rule_task_with_a_connector_is_a_pdcaflow_http_task(runtime, erp):
    model = _one_task_model("rule_by_http", "rule", f"""\
    <bpmn:businessRuleTask id="rule" name="Ask the rules service">
      <bpmn:extensionElements>
        <camunda:inputOutput><camunda:inputParameter name="ref">${{order}}</camunda:inputParameter></camunda:inputOutput>
        <camunda:connector>
          <camunda:inputOutput>
            <camunda:inputParameter name="url">{erp}/orders/${{ref}}</camunda:inputParameter>
            <camunda:inputParameter name="method">${{verb}}</camunda:inputParameter>
            <camunda:outputParameter name="answer">${{response}}</camunda:outputParameter>
          </camunda:inputOutput>
          <camunda:connectorId>http-connector</camunda:connectorId>
        </camunda:connector>
      </bpmn:extensionElements>
    </bpmn:businessRuleTask>
""")
    clock.reset()
    assert runtime.deploy([("rule_by_http.bpmn", model)]).ok
    instance = runtime.start("rule_by_http", {"order": "B-9", "verb": "get"}, LEAD)
    [task] = xt.list_tasks(runtime, LEAD, instance_id=instance.id)
    assert (task.topic, task.activity_id) == ("pdcaflow.http", "rule")
    assert run_connectors(runtime, "sched-1", _settings(erp)).completed == 1
    [(method, path, _headers, _body)] = Erp.requests
    assert (method, path) == ("GET", "/orders/B-9")  # the activity's own input parameter is seen by the connector
    data = runtime.instance(instance.id).data
    assert json.loads(data["answer"]) == {"order": "B-9", "status": "delivered"} and "ref" not in data


def test_a_multi_instance_connector_task_calls_once_per_element(runtime, erp):
    model = _one_task_model("each_order", "lookup", f"""\
    <bpmn:serviceTask id="lookup" name="Look each order up">
      <bpmn:extensionElements>
        <camunda:connector>
          <camunda:inputOutput>
            <camunda:inputParameter name="url">{erp}/orders/${{o}}</camunda:inputParameter>
            <camunda:inputParameter name="method">GET</camunda:inputParameter>
            <camunda:outputParameter name="last_seen">${{S(response).prop("order").stringValue()}}</camunda:outputParameter>
          </camunda:inputOutput>
          <camunda:connectorId>http-connector</camunda:connectorId>
        </camunda:connector>
      </bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics isSequential="true" camunda:collection="${{orders}}"
                                             camunda:elementVariable="o" />
    </bpmn:serviceTask>
""")
    clock.reset()
    assert runtime.deploy([("each_order.bpmn", model)]).ok
    instance = runtime.start("each_order", {"orders": ["A-1", "A-2", "A-3"]}, LEAD)
    assert run_connectors(runtime, "sched-1", _settings(erp)).completed == 3
    assert [path for _m, path, _h, _b in Erp.requests] == ["/orders/A-1", "/orders/A-2", "/orders/A-3"]
    after = runtime.instance(instance.id)
    assert after.status == "completed" and after.data["last_seen"] == "A-3"


def test_an_output_parameter_that_fails_is_an_incident_naming_it(runtime, erp):
    model = _one_task_model("bad_output", "lookup", f"""\
    <bpmn:serviceTask id="lookup">
      <bpmn:extensionElements>
        <camunda:connector>
          <camunda:inputOutput>
            <camunda:inputParameter name="url">{erp}/orders/A-1</camunda:inputParameter>
            <camunda:inputParameter name="method">GET</camunda:inputParameter>
            <camunda:outputParameter name="refund">${{S(response).prop("refund").numberValue()}}</camunda:outputParameter>
          </camunda:inputOutput>
          <camunda:connectorId>http-connector</camunda:connectorId>
        </camunda:connector>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
""")
    clock.reset()
    assert runtime.deploy([("bad_output.bpmn", model)]).ok
    instance = runtime.start("bad_output", {}, LEAD)
    result = run_connectors(runtime, "sched-1", _settings(erp))
    assert (result.completed, result.incidents) == (0, [instance.id]) and len(Erp.requests) == 1
    stuck = runtime.instance(instance.id)
    assert stuck.status == "incident" and "refund" not in stuck.data
    assert "output parameter 'refund' of the connector" in stuck.incidents[0].message
    assert "has no property 'refund'" in stuck.incidents[0].message
