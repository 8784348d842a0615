"""The instance page's incident section for an external task whose worker gave up: the lead sees
the error and sets retries there; a technical `worker` account cannot sign in to the web."""

from __future__ import annotations

from pathlib import Path

from engine import external_tasks as xt
from engine.accounts import save_user
from engine.views import Actor
from tests.integration.conftest import PASSWORD, csrf, login, post

MODELS = Path(__file__).parents[1] / "constructs" / "models"
WORKER = Actor("erp.worker", frozenset({"worker"}), "worker")


def _stuck_instance(runtime, lead):
    runtime.deploy_paths([MODELS / "xt_order_lookup.bpmn"])
    instance = runtime.start("xt_order_lookup", {"order": "A-1"}, lead)
    [task] = xt.fetch_and_lock(runtime, WORKER, "w1", [xt.TopicRequest("erp-lookup", 60_000)])
    xt.handle_failure(runtime, WORKER, task.id, "w1", "ERP refused the login", "HTTP 401 from erp", 0, 0)
    return instance, task


def test_lead_sets_retries_on_the_instance_page(app, client, runtime):
    lead = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
    instance, task = _stuck_instance(runtime, lead)
    login(client, "lena.lead")
    page = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert "ERP refused the login" in page and "HTTP 401 from erp" in page and "Set retries" in page
    path = f"/instances/{instance.id}/external-tasks/{task.id}/retries"
    response = post(client, path, {"retries": "2"}, page=f"/instances/{instance.id}")
    assert response.status_code == 302
    assert runtime.instance(instance.id).status == "running"
    [again] = xt.fetch_and_lock(runtime, WORKER, "w2", [xt.TopicRequest("erp-lookup", 60_000)])
    assert again.retries == 2
    assert "Set retries" not in client.get(f"/instances/{instance.id}").get_data(as_text=True)


def test_employee_cannot_set_retries(app, client, runtime):
    lead = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
    instance, task = _stuck_instance(runtime, lead)
    login(client, "rita.reviewer")
    response = post(client, f"/instances/{instance.id}/external-tasks/{task.id}/retries", {"retries": "1"})
    assert response.status_code in (403, 404)
    assert runtime.instance(instance.id).status == "incident"


def test_worker_accounts_cannot_sign_in_to_the_web(app, client, db):
    save_user(db, "erp.worker", "worker", password=PASSWORD)
    response = client.post("/login", data={"username": "erp.worker", "password": PASSWORD,
                                           "csrf_token": csrf(client)})
    assert response.status_code == 403 and "/engine-rest" in response.get_data(as_text=True)
    assert client.get("/inbox").status_code in (302, 401)
