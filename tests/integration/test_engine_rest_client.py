"""The real, unmodified PyPI client `camunda-external-task-client-python3` against a running PDCA
Flow (a real HTTP server on a free port) on SQLite and PostgreSQL: start with its EngineClient,
workers fetch and complete, failures become an incident resolved by setting retries, a BPMN error
takes the boundary path, message correlation by business key, lock expiry, concurrent fetches."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from camunda.client.engine_client import EngineClient
from camunda.client.external_task_client import ExternalTaskClient
from camunda.external_task.external_task_worker import ExternalTaskWorker
from camunda.process_definition.process_definition_client import ProcessDefinitionClient

from engine.accounts import save_user
from tests.conftest import serving
from web import create_app

MODELS = Path(__file__).parents[1] / "constructs" / "models"
PASSWORD = "correct-horse-9"
WORKER_AUTH = {"username": "erp.worker", "password": PASSWORD}
LEAD_AUTH = {"username": "lena.lead", "password": PASSWORD}


@pytest.fixture
def engine(db, runtime, tmp_path):
    save_user(db, "erp.worker", "worker", password=PASSWORD)
    save_user(db, "lena.lead", "quality_lead", password=PASSWORD, groups=["quality_lead"])
    save_user(db, "rita.reviewer", "employee", password=PASSWORD, groups=["reviewers"])
    runtime.deploy_paths([MODELS / "xt_order_lookup.bpmn", MODELS / "xt_credit_note.bpmn"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "xt-test", "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield f"{base}/engine-rest", runtime


def _client(url: str, worker: str = "worker-1", **config) -> ExternalTaskClient:
    return ExternalTaskClient(worker, url, {"auth_basic": WORKER_AUTH, "asyncResponseTimeout": 0, **config})


def _engine(url: str) -> EngineClient:
    return EngineClient(url, {"auth_basic": WORKER_AUTH})


def test_start_fetch_complete_with_variables(engine):
    url, runtime = engine
    started = _engine(url).start_process("xt_order_lookup", {"order": "A-17"}, business_key="C-1001")
    assert started["businessKey"] == "C-1001" and started["ended"] is False
    results = []

    def handle(task):
        results.append((task.get_activity_id(), task.get_variable("order"), task.get_business_key()))
        return task.complete({"amount": 120.5, "currency": "EUR", "lines": [1, 2]})

    worker = ExternalTaskWorker("worker-1", url, {"auth_basic": WORKER_AUTH, "asyncResponseTimeout": 1000})
    worker.fetch_and_execute("erp-lookup", handle)
    assert results == [("lookup", "A-17", "C-1001")]
    instance = runtime.instance(started["id"])
    assert instance.status == "completed"
    assert (instance.data["amount"], instance.data["currency"], instance.data["path"]) == (120.5, "EUR", "found")
    assert instance.data["lines"] == [1, 2]
    variables = requests.get(f"{url}/process-instance/{started['id']}/variables",
                             auth=("erp.worker", PASSWORD), timeout=10).json()
    assert variables["amount"] == {"type": "Double", "value": 120.5, "valueInfo": {}}


def test_failure_until_incident_then_retries_set(engine):
    url, runtime = engine
    started = _engine(url).start_process("xt_order_lookup", {"order": "B-2"})
    client = _client(url)

    def fail(task):
        return task.failure("ERP unavailable", "connection refused", max_retries=2, retry_timeout=0)

    worker = ExternalTaskWorker("worker-1", url, {"auth_basic": WORKER_AUTH, "asyncResponseTimeout": 0})
    worker.fetch_and_execute("erp-lookup", fail)  # retries: None -> 2
    worker.fetch_and_execute("erp-lookup", fail)  # 2 -> 1
    worker.fetch_and_execute("erp-lookup", fail)  # 1 -> 0: incident
    assert client.fetch_and_lock("erp-lookup") == []
    instance = runtime.instance(started["id"])
    assert instance.status == "incident"
    assert [i.message for i in instance.incidents] == ["ERP unavailable"]
    listed = requests.get(f"{url}/external-task", params={"processInstanceId": started["id"]},
                          auth=("erp.worker", PASSWORD), timeout=10).json()
    assert [(t["retries"], t["errorMessage"]) for t in listed] == [(0, "ERP unavailable")]
    # an employee may not set retries; a quality lead resolves the incident
    denied = requests.put(f"{url}/external-task/{listed[0]['id']}/retries", json={"retries": 1},
                          auth=("rita.reviewer", PASSWORD), timeout=10)
    assert denied.status_code == 403 and denied.json()["type"] == "AuthorizationException"
    resolved = requests.put(f"{url}/external-task/{listed[0]['id']}/retries", json={"retries": 1},
                            auth=("lena.lead", PASSWORD), timeout=10)
    assert resolved.status_code == 204
    assert runtime.instance(started["id"]).status == "running"
    worker.fetch_and_execute("erp-lookup", lambda task: task.complete({}))
    assert runtime.instance(started["id"]).status == "completed"


def test_bpmn_error_takes_the_boundary_path(engine):
    url, runtime = engine
    started = _engine(url).start_process("xt_order_lookup", {"order": "nope"})
    worker = ExternalTaskWorker("worker-1", url, {"auth_basic": WORKER_AUTH, "asyncResponseTimeout": 0})
    worker.fetch_and_execute("erp-lookup",
                             lambda task: task.bpmn_error("ORDER_UNKNOWN", "no such order", {"reason": "typo"}))
    instance = runtime.instance(started["id"])
    assert instance.status == "completed" and instance.data["path"] == "unknown" and instance.data["reason"] == "typo"


def test_message_correlation_by_business_key(engine):
    url, runtime = engine
    engine_client = _engine(url)
    first = engine_client.start_process("xt_credit_note", {}, business_key="C-1")
    second = engine_client.start_process("xt_credit_note", {}, business_key="C-2")
    worker = ExternalTaskWorker("worker-1", url, {"auth_basic": WORKER_AUTH, "asyncResponseTimeout": 0,
                                                  "maxTasks": 5})
    worker.fetch_and_execute("erp-credit-note", lambda task: task.complete({"note": f"CN-{task.get_business_key()}"}))
    result = engine_client.correlate_message("CreditNoteApproved", business_key="C-2",
                                             process_variables={"approved_by": "finance"})
    assert [r["execution"]["processInstanceId"] for r in result] == [second["id"]]
    moved = runtime.instance(second["id"])
    assert moved.data["approved_by"] == "finance" and moved.data["note"] == "CN-C-2"
    [task] = _client(url).fetch_and_lock("notify-supplier")
    assert task["processInstanceId"] == second["id"]
    assert runtime.instance(first["id"]).data.get("approved_by") is None
    with pytest.raises(Exception, match="400"):
        engine_client.correlate_message("CreditNoteApproved", business_key="C-404")


def test_message_start_event_through_the_engine_client(engine):
    url, runtime = engine
    runtime.deploy_paths([MODELS / "evt_message_start.bpmn"])
    [result] = _engine(url).correlate_message("order_placed", business_key="O-31",
                                              process_variables={"order": "O-31"})
    assert result["resultType"] == "ProcessDefinition" and result["execution"] is None
    started = runtime.instance(result["processInstance"]["id"])
    assert (started.key, started.business_key, started.data["order"]) == ("evt_message_start", "O-31", "O-31")
    assert [t.spec_id for t in started.tasks] == ["handle_order"]


def test_lock_expiry_lets_a_second_worker_take_the_task(engine):
    url, runtime = engine
    started = _engine(url).start_process("xt_order_lookup", {})
    first = _client(url, "worker-1", lockDuration=300)
    [task] = first.fetch_and_lock("erp-lookup")
    second = _client(url, "worker-2")
    assert second.fetch_and_lock("erp-lookup") == []
    time.sleep(0.4)
    [again] = second.fetch_and_lock("erp-lookup")
    assert again["id"] == task["id"] and again["workerId"] == "worker-2"
    with pytest.raises(Exception, match="400"):
        first.complete(task["id"], {})
    assert second.complete(task["id"], {"by": "worker-2"}) is True
    assert runtime.instance(started["id"]).data["by"] == "worker-2"


def test_two_workers_fetching_at_once_never_share_a_task(engine):
    url, runtime = engine
    engine_client = _engine(url)
    for n in range(12):
        engine_client.start_process("xt_order_lookup", {"n": n})
    got: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def fetch(name: str) -> None:
        client = _client(url, f"worker-{name}", maxTasks=3)
        barrier.wait()
        for _ in range(6):
            got[name].extend(t["id"] for t in client.fetch_and_lock("erp-lookup"))

    threads = [threading.Thread(target=fetch, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(got["a"]) & set(got["b"])
    assert len(got["a"]) + len(got["b"]) == 12 and len(set(got["a"] + got["b"])) == 12


def test_long_polling_answers_as_soon_as_a_task_appears(engine):
    url, _ = engine
    client = _client(url, asyncResponseTimeout=8000)
    got: list = []
    poller = threading.Thread(target=lambda: got.extend(client.fetch_and_lock("erp-lookup")))
    began = time.monotonic()
    poller.start()
    time.sleep(0.5)
    _engine(url).start_process("xt_order_lookup", {})
    poller.join(15)
    assert len(got) == 1 and time.monotonic() - began < 4


def test_camunda_shapes_auth_and_errors(engine):
    url, _ = engine
    assert requests.get(f"{url}/engine", timeout=10).status_code == 401
    assert requests.get(f"{url}/engine", auth=("erp.worker", "wrong-password"), timeout=10).status_code == 401
    assert requests.get(f"{url}/engine", auth=("erp.worker", PASSWORD), timeout=10).json() == [{"name": "default"}]
    assert "version" in requests.get(f"{url}/version", auth=("erp.worker", PASSWORD), timeout=10).json()
    # employees may not fetch; unknown fields are ignored; timestamps in Camunda's format
    denied = requests.post(f"{url}/external-task/fetchAndLock", auth=("rita.reviewer", PASSWORD), timeout=10,
                           json={"workerId": "w", "maxTasks": 1, "topics": [{"topicName": "erp-lookup",
                                                                              "lockDuration": 1000}]})
    assert denied.status_code == 403 and set(denied.json()) == {"type", "message"}
    _engine(url).start_process("xt_order_lookup", {"when": "now"})
    fetched = requests.post(f"{url}/external-task/fetchAndLock", auth=("erp.worker", PASSWORD), timeout=10, json={
        "workerId": "w", "maxTasks": 1, "usePriority": True, "sorting": None, "asyncResponseTimeout": None,
        "topics": [{"topicName": "erp-lookup", "lockDuration": 1000, "processVariables": {},
                    "includeExtensionProperties": True, "deserializeValues": True, "localVariables": False,
                    "variables": None, "withoutTenantId": False}]}).json()
    [task] = fetched
    assert task["priority"] == 5 and task["variables"]["when"] == {"type": "String", "value": "now", "valueInfo": {}}
    assert len(task["lockExpirationTime"]) == 28 and task["lockExpirationTime"].endswith("+0000")
    bad = requests.post(f"{url}/external-task/{task['id']}/complete", auth=("erp.worker", PASSWORD), timeout=10,
                        json={"workerId": "w", "variables": {"n": {"value": "x", "type": "Integer"}}})
    assert bad.status_code == 400 and bad.json()["type"] == "InvalidRequestException" and "variables.n" in \
        bad.json()["message"]
    missing = requests.post(f"{url}/external-task/does-not-exist/complete", auth=("erp.worker", PASSWORD),
                            timeout=10, json={"workerId": "w"})
    assert missing.status_code == 404 and set(missing.json()) == {"type", "message"}
    unknown = requests.get(f"{url}/no-such-resource", auth=("erp.worker", PASSWORD), timeout=10)
    assert unknown.status_code == 404 and unknown.json()["type"] == "RestException"
    done = requests.post(f"{url}/external-task/{task['id']}/complete", auth=("erp.worker", PASSWORD), timeout=10,
                         json={"workerId": "w", "variables": {"n": {"value": 3, "type": "Integer"},
                                                               "doc": {"value": '{"a": 1}', "type": "Json"}}})
    assert done.status_code == 204 and done.content == b""


def test_topic_filtered_by_process_variables(engine):
    url, runtime = engine
    engine_client = _engine(url)
    engine_client.start_process("xt_order_lookup", {"region": "north"})
    south = engine_client.start_process("xt_order_lookup", {"region": "south"})
    client = _client(url, maxTasks=5)
    [task] = client.fetch_and_lock("erp-lookup", process_variables={"region": "south"})
    assert task["processInstanceId"] == south["id"]
    assert client.fetch_and_lock("erp-lookup", process_variables={"region": "west"}) == []


def test_engine_client_lists_instances_by_variable(engine):
    """EngineClient.get_process_instance sends `variables=name_operator_value,...` (Camunda's
    VariableListConverter: exactly three parts split on `_`, several joined by `,`): only instances
    whose variables match are listed; a malformed expression is refused (400)."""
    url, runtime = engine
    engine_client = _engine(url)
    north = engine_client.start_process("xt_order_lookup", {"region": "north", "lines": 4})
    engine_client.start_process("xt_order_lookup", {"region": "south", "lines": 9})
    listed = engine_client.get_process_instance("xt_order_lookup", variables=["region_eq_north"])
    assert [i["id"] for i in listed] == [north["id"]]
    assert [i["id"] for i in engine_client.get_process_instance(
        "xt_order_lookup", variables=["region_neq_south", "lines_lteq_5"])] == [north["id"]]
    assert engine_client.get_process_instance("xt_order_lookup", variables=["region_like_%th"]) != []
    assert engine_client.get_process_instance("xt_order_lookup", variables=["region_eq_west"]) == []
    with pytest.raises(Exception, match="400.*KEY_OPERATOR_VALUE"):
        engine_client.get_process_instance("xt_order_lookup", variables=["order_no_eq_1"])
    # get_process_instance_variable always reads `/data` too: Camunda refuses it for a non-binary variable
    with pytest.raises(Exception, match="400 : InvalidRequestException : .*not a binary value"):
        engine_client.get_process_instance_variable(north["id"], "region")


def test_process_definition_client_starts_by_version(engine):
    """ProcessDefinitionClient.start_process_by_version: GET /process-definition?key=…&sortBy=version&
    sortOrder=desc&maxResults=1, then POST /process-definition/{id}/start. No definition here has a
    version tag, so asking for one finds none, as on a Camunda whose models have none."""
    url, runtime = engine
    client = ProcessDefinitionClient(url, {"auth_basic": WORKER_AUTH})
    started = client.start_process_by_version("xt_order_lookup", None, {"order": "A-21"}, business_key="C-21")
    assert started["definitionId"] == "xt_order_lookup:1" and started["businessKey"] == "C-21"
    assert runtime.instance(started["id"]).data["order"] == "A-21"
    [definition] = client.get_process_definitions("xt_order_lookup", None, [])
    assert (definition["id"], definition["key"], definition["version"]) == ("xt_order_lookup:1", "xt_order_lookup", 1)
    with pytest.raises(Exception, match="no process definitions found"):
        client.start_process_by_version("xt_order_lookup", "1.0", {})
