"""Built-in connectors (engine/connectors.py) end to end on SQLite and PostgreSQL: pdcaflow.http
against a real local HTTP server (allow-list, headers, response into a variable, an address outside
the allow-list refused with an incident), pdcaflow.mail through the outbox to a real SMTP server
(aiosmtpd); failures count down retries with back-off, then an incident."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine import clock
from engine import external_tasks as xt
from engine.connectors import allowed, run_connectors
from engine.notifications import OutboxPolicy, deliver_outbox
from engine.settings import Settings
from engine.views import Actor
from tests.integration.test_scheduler_mail import smtp  # noqa: F401 (the aiosmtpd fixture)

MODELS = Path(__file__).parents[1] / "constructs" / "models"
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


class Erp(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict, dict]] = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server hook name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        Erp.requests.append(("POST", self.path, dict(self.headers), body))
        self._answer({"order": self.path.rsplit("/", 1)[-1], "amount": 99.5, "status": "delivered"})

    def _answer(self, payload):
        raw = json.dumps(payload).encode()
        self.send_response(Erp.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def erp():
    Erp.requests, Erp.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Erp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _settings(erp_url: str, **kw) -> Settings:
    return Settings(http_allow=(f"{erp_url}/orders/",), http_timeout=5.0, connector_retries=2, connector_backoff=60,
                    http_headers=((f"{erp_url}/orders/", (("X-Api-Key", "secret-key"),)),), **kw)


def test_http_then_mail_end_to_end(runtime, erp, smtp):  # noqa: F811
    collector, _server, smtp_config = smtp
    clock.reset()
    runtime.deploy_paths([MODELS / "xt_connectors.bpmn"])
    instance = runtime.start("xt_connectors", {"erp_url": erp, "order": "A-17", "customer_email": "ann@example.com",
                                               "secret": "not sent"}, LEAD)
    done = run_connectors(runtime, "sched-1", _settings(erp))
    assert done.completed == 2 and done.failed == 0  # http, then (same pass) the mail task it led to
    [(method, path, headers, body)] = Erp.requests
    assert (method, path, body) == ("POST", "/orders/A-17", {"order": "A-17", "customer_email": "ann@example.com"})
    assert headers["X-Api-Key"] == "secret-key"
    after = runtime.instance(instance.id)
    assert after.status == "completed"
    assert after.data["erp_order"] == {"order": "A-17", "amount": 99.5, "status": "delivered"}
    delivered = deliver_outbox(runtime.db, "sched-1", smtp_config, OutboxPolicy(backoff=timedelta(seconds=60)))
    assert delivered.sent == 2
    recipients = sorted(r for rcpts, _ in collector.messages for r in rcpts)
    assert recipients == ["ann@example.com", "quality@example.com"]
    message = collector.messages[0][1]
    assert message["Subject"] == "Your complaint about order A-17"
    assert message.is_multipart()  # text and HTML
    assert run_connectors(runtime, "sched-1", _settings(erp)).completed == 0  # nothing is sent twice


def test_address_outside_the_allow_list_is_refused_with_an_incident(runtime, erp):
    clock.reset()
    runtime.deploy_paths([MODELS / "xt_connectors.bpmn"])
    evil = erp.replace("127.0.0.1", "localhost")  # same server, but not the allowed host
    instance = runtime.start("xt_connectors", {"erp_url": evil, "order": "A-1", "customer_email": "a@example.com"},
                             LEAD)
    result = run_connectors(runtime, "sched-1", _settings(erp))
    assert result.failed == 1 and result.incidents == [instance.id] and Erp.requests == []
    stuck = runtime.instance(instance.id)
    assert stuck.status == "incident" and "not allowed" in stuck.incidents[0].message


def test_server_errors_retry_with_backoff_then_incident_then_retries_set(runtime, erp):
    clock.reset()
    try:
        runtime.deploy_paths([MODELS / "xt_connectors.bpmn"])
        instance = runtime.start("xt_connectors", {"erp_url": erp, "order": "B-2", "customer_email": "b@example.com"},
                                 LEAD)
        Erp.status = 503
        assert run_connectors(runtime, "s", _settings(erp)).failed == 1  # retries 2 -> 1, back off 60 s
        assert run_connectors(runtime, "s", _settings(erp)).failed == 0  # not before the back-off
        clock.advance(timedelta(seconds=61))
        assert run_connectors(runtime, "s", _settings(erp)).incidents == [instance.id]
        stuck = runtime.instance(instance.id)
        assert stuck.status == "incident" and "HTTP 503" in stuck.incidents[0].message
        [task] = xt.list_tasks(runtime, LEAD, instance_id=instance.id)
        Erp.status = 200
        xt.set_retries(runtime, LEAD, task.id, 1)
        assert run_connectors(runtime, "s", _settings(erp)).completed == 2
        assert runtime.instance(instance.id).status == "completed"
    finally:
        clock.reset()


def test_allow_list_matching():
    allow = ("https://erp.example.com/api/", "http://10.0.0.5:8080/")
    assert allowed("https://erp.example.com/api/orders/1", allow)
    assert allowed("https://ERP.example.com:443/api/x", allow)
    assert not allowed("https://erp.example.com/apix", allow)
    assert not allowed("https://erp.example.com.evil.org/api/", allow)
    assert not allowed("http://erp.example.com/api/", allow)  # another scheme
    assert not allowed("https://erp.example.com:8443/api/", allow)
    assert allowed("http://10.0.0.5:8080/anything", allow)
    assert not allowed("file:///etc/passwd", allow) and not allowed("ftp://10.0.0.5:8080/", allow)
