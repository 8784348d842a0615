"""The inbox tells cases apart: each task carries its case (reference, customer, product, severity),
the process's name, and can be searched and sorted — in the web inbox and GET /api/v1/tasks."""

from __future__ import annotations

from engine.views import Actor
from tests.integration.conftest import csrf, login, token


def _start(runtime, reference: str, customer: str, product: str, severity: str | None = None):
    data = {"reference": reference, "customer_name": customer, "product": product}
    if severity:
        data["severity"] = severity
    return runtime.start("simple_review", data, Actor.system("test"))


def test_api_tasks_carry_their_case_and_search_and_sort(client, runtime):
    _start(runtime, "C-2", "Bob Builder", "Toaster T1")
    _start(runtime, "C-1", "Ann Example", "Kettle K2", "high")
    rita = token(client, "rita.reviewer")
    tasks = client.get("/api/v1/tasks?sort=reference", headers=rita).get_json()
    assert [t["case"]["reference"] for t in tasks] == ["C-1", "C-2"]
    first = tasks[0]["case"]
    assert first["customer"] == "Ann Example" and first["product"] == "Kettle K2" and first["severity"] == "high"
    assert first["title"] == "Ann Example — Kettle K2" and "Severity: high" in first["summary"]
    assert tasks[0]["process_name"] == "Simple review"

    def refs(query: str) -> list[str]:
        response = client.get(f"/api/v1/tasks?{query}", headers=rita)
        assert response.status_code == 200, response.get_json()
        return [t["case"]["reference"] for t in response.get_json()]

    assert refs("q=bob") == ["C-2"]                 # customer, case-insensitive
    assert refs("q=kettle") == ["C-1"]              # product
    assert refs("q=C-2") == ["C-2"]                 # reference
    assert sorted(refs("q=c-")) == ["C-1", "C-2"]   # a part of both references
    assert refs("q=assess") == []                   # the task's name is not the case
    assert refs("q=50%25") == []                    # LIKE wildcards are literal
    assert refs("sort=reference&limit=1&offset=1") == ["C-2"]
    assert refs("sort=created") == ["C-1", "C-2"]   # newest first
    bad = client.get("/api/v1/tasks?sort=colour", headers=rita)
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == "sort"
    bad = client.get("/api/v1/tasks?limit=0", headers=rita)
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == "limit"
    # an outsider's search finds nothing of other groups
    assert client.get("/api/v1/tasks?q=kettle", headers=token(client, "otto.outsider")).get_json() == []


def test_web_inbox_shows_cases_searches_and_lands_on_groups(client, runtime):
    _start(runtime, "C-7", "Ann Example", "Kettle K2", "high")
    _start(runtime, "C-8", "Bob Builder", "Toaster T1")
    login(client, "rita.reviewer")
    page = client.get("/inbox").get_data(as_text=True)  # nothing assigned to Rita: her groups hold the work
    current = page.split('aria-current="page"')[1].split("</a>")[0]
    assert "My groups" in current
    for text in ("C-7", "Ann Example", "Kettle K2", "high", "C-8", "Bob Builder"):
        assert text in page
    rows = page.split("<tbody>")[1]
    assert "Simple review" in rows and "simple_review" not in rows
    found = client.get("/inbox?tab=groups&q=toaster").get_data(as_text=True)
    assert "C-8" in found and "C-7" not in found
    none = client.get("/inbox?tab=groups&q=nothing-like-this").get_data(as_text=True)
    assert "No tasks match" in none
    mine = client.get("/inbox?tab=mine").get_data(as_text=True)  # an explicit tab is kept
    assert "No tasks here." in mine


def test_task_and_instance_pages_show_labelled_values_and_raw_data_only_to_leads(client, runtime):
    instance = _start(runtime, "C-9", "Ann Example", "Kettle K2")
    task_id = instance.tasks[0].id
    runtime.complete(task_id, Actor("rita.reviewer", frozenset({"reviewers"}), "employee"),
                     {"amount": 5, "urgent": True, "note": "fine"})
    login(client, "rita.reviewer")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    panel = page.split('class="data case-values"')[1].split("</dl>")[0]
    assert "<dt>Urgent</dt>" in panel and ">Yes</dd>" in panel and "True" not in panel
    assert "<dt>Customer</dt>" in panel and "Simple review" in page
    shown = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert 'class="data case-values"' in shown and "Raw data" not in shown  # an employee: no JSON dump
    client.post("/logout", data={"csrf_token": csrf(client, "/inbox")})
    login(client, "lena.lead")
    lead_page = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert '<details class="raw-data">' in lead_page and "&#34;urgent&#34;: true" in lead_page
