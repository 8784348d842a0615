"""The case search index and the task filters (issue 14): process-declared case title and summary
(`case.title` / `case.summary` Camunda properties, labelled with form labels), the index kept current
on start, completion and variable changes, and the filters, sorts and pages of GET /api/v1/tasks and
the web inbox — on SQLite (FTS5) and PostgreSQL (pg_trgm)."""

from __future__ import annotations

from datetime import timedelta

from engine import clock
from engine.views import Actor
from tests.conftest import FIXTURES
from tests.integration.conftest import login, token

DECLARED = """<bpmn:process id="simple_review" name="Simple review" isExecutable="true">
    <bpmn:extensionElements>
      <camunda:properties>
        <camunda:property name="case.title" value="customer_name, product" />
        <camunda:property name="case.summary" value="amount, urgent, note, order.number" />
      </camunda:properties>
    </bpmn:extensionElements>"""
REVIEWER = Actor("rita.reviewer", frozenset({"reviewers"}), "employee")


def _declare(runtime, tmp_path) -> None:
    """simple_review v2: the same model with the case declared on the process, as a user edits it."""
    xml = (FIXTURES / "simple_review.bpmn").read_text()
    path = tmp_path / "simple_review.bpmn"
    path.write_text(xml.replace('<bpmn:process id="simple_review" name="Simple review" isExecutable="true">',
                                DECLARED, 1))
    runtime.deploy_paths([path])


def _start(runtime, reference: str, customer: str, product: str, **more):
    return runtime.start("simple_review", {"reference": reference, "customer_name": customer, "product": product,
                                           **more}, Actor.system("test"))


def _refs(client, headers, query: str) -> list[str]:
    response = client.get(f"/api/v1/tasks?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [t["case"]["reference"] for t in response.get_json()]


def test_declared_case_is_indexed_on_start_and_complete(client, runtime, tmp_path):
    _declare(runtime, tmp_path)
    started = _start(runtime, "C-31", "Greta Gruber", "Kettle K2", order={"number": "ORD-77"})
    _start(runtime, "C-32", "Hans Huber", "Toaster T1")
    rita = token(client, "rita.reviewer")
    case = next(t["case"] for t in client.get("/api/v1/tasks", headers=rita).get_json()
                if t["case"]["reference"] == "C-31")
    assert case["title"] == "Greta Gruber — Kettle K2"
    assert case["summary"] == "Order number: ORD-77"  # no form label: the variable name made readable
    assert _refs(client, rita, "q=greta") == ["C-31"]          # a customer's name, any case
    assert _refs(client, rita, "q=c-32") == ["C-32"]           # a reference
    assert _refs(client, rita, "q=toaster") == ["C-32"]        # a title word
    assert _refs(client, rita, "q=ord-77") == ["C-31"]         # a summary word
    assert _refs(client, rita, "q=nothing like this") == []
    # several words: the text as typed, found anywhere (PostgreSQL's index looks for the word with digits)
    assert _refs(client, rita, "q=Greta  Gruber") == ["C-31"]
    assert _refs(client, rita, "q=number: ord-77") == ["C-31"]
    assert _refs(client, rita, "q=gruber greta") == []
    # completing the first step writes variables: the summary (form labels) and the index follow
    runtime.complete(started.tasks[0].id, REVIEWER, {"amount": 500, "urgent": True, "note": "dented lid"})
    lead = token(client, "lena.lead")
    found = client.get("/api/v1/tasks?q=dented", headers=lead).get_json()
    assert [t["case"]["reference"] for t in found] == ["C-31"]
    assert found[0]["case"]["summary"] == "Amount: 500 · Urgent: Yes · Note: dented lid · Order number: ORD-77"
    assert _refs(client, rita, "q=dented") == []  # Rita's group has no open task of it any more


def test_variable_change_reindexes_and_old_words_are_gone(client, runtime, tmp_path):
    _declare(runtime, tmp_path)
    first = _start(runtime, "C-41", "Ann Example", "Kettle K2")
    runtime.complete(first.tasks[0].id, REVIEWER, {"amount": 500, "note": "first look"})
    lead = token(client, "lena.lead")
    assert _refs(client, lead, "q=first look") == ["C-41"]
    approve = next(t for t in client.get("/api/v1/tasks?q=c-41", headers=lead).get_json() if t["state"] == "open")
    # the approval form has no `note`; a lead's API completion still may carry any declared variable
    response = client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=lead,
                           json={"data": {"decision": "approve"}})
    assert response.status_code == 200, response.get_json()
    # the instance is still indexed by what it says now (completed tasks keep their case too)
    assert _refs(client, lead, "q=first look&state=completed") == ["C-41", "C-41"]


def test_fallback_case_without_properties(client, runtime):
    _start(runtime, "C-51", "Bob Builder", "Toaster T1", severity="high")
    rita = token(client, "rita.reviewer")
    (task,) = client.get("/api/v1/tasks?q=bob builder", headers=rita).get_json()
    assert task["case"]["title"] == "Bob Builder — Toaster T1"
    assert task["case"]["summary"] == "Product: Toaster T1 · Severity: high"


def test_filters_sorts_and_next_link(client, runtime, lead):
    for n in range(5):
        _start(runtime, f"C-6{n}", f"Customer {n}", "Kettle")
    headers = token(client, "lena.lead")
    tasks = client.get("/api/v1/tasks?sort=reference", headers=headers).get_json()
    assert [t["case"]["reference"] for t in tasks] == [f"C-6{n}" for n in range(5)]
    runtime.assign(tasks[0]["id"], lead, "rob.reviewer")
    runtime.set_due_date(tasks[1]["id"], lead, (clock.now() - timedelta(hours=1)).isoformat())
    runtime.set_due_date(tasks[2]["id"], lead, None)
    assert _refs(client, headers, "assignee=rob.reviewer") == ["C-60"]
    assert _refs(client, headers, "due=overdue") == ["C-61"]
    assert _refs(client, headers, "due=none") == ["C-62"]
    assert sorted(_refs(client, headers, "due=week")) == ["C-60", "C-61", "C-63", "C-64"]  # P2D, and overdue
    assert sorted(_refs(client, headers, "group=reviewers")) == [f"C-6{n}" for n in range(5)]
    assert _refs(client, headers, "group=purchasing") == []
    assert _refs(client, headers, "process=Simple%20review&q=customer%203") == ["C-63"]  # by name
    assert _refs(client, headers, "process=simple_review&q=customer%203") == ["C-63"]  # by key
    assert _refs(client, headers, "process=Unknown") == []
    assert _refs(client, headers, "min_priority=51") == []
    assert len(_refs(client, headers, "min_priority=50")) == 5
    # pages: limit/offset with a Link to the next page while there is one
    page = client.get("/api/v1/tasks?sort=reference&limit=2&q=customer", headers=headers)
    assert [t["case"]["reference"] for t in page.get_json()] == ["C-60", "C-61"]
    link = page.headers["Link"]
    assert 'rel="next"' in link and "offset=2" in link and "q=customer" in link
    next_url = link.split(";")[0].strip("<>")
    last = client.get(next_url.replace("http://localhost", ""), headers=headers)
    assert [t["case"]["reference"] for t in last.get_json()] == ["C-62", "C-63"]
    final = client.get("/api/v1/tasks?sort=reference&limit=2&offset=4&q=customer", headers=headers)
    assert [t["case"]["reference"] for t in final.get_json()] == ["C-64"] and "Link" not in final.headers
    for query, field in (("due=tomorrowish", "due"), ("min_priority=-1", "min_priority"), ("sort=colour", "sort"),
                         ("state=lost", "state")):
        bad = client.get(f"/api/v1/tasks?{query}", headers=headers)
        assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == field, query
    # an employee's filters never widen what they may see
    outsider = token(client, "otto.outsider")
    assert _refs(client, outsider, "group=reviewers") == [] and _refs(client, outsider, "q=customer") == []


def test_web_inbox_filter_bar(client, runtime, lead):
    _start(runtime, "C-71", "Ann Example", "Kettle K2")
    other = _start(runtime, "C-72", "Bob Builder", "Toaster T1")
    runtime.set_due_date(other.tasks[0].id, lead, None)
    login(client, "rita.reviewer")
    page = client.get("/inbox?tab=groups&due=none").get_data(as_text=True)
    rows = page.split("<tbody>")[1]
    assert "C-72" in rows and "C-71" not in rows and "Clear filters" in page
    assert '<option value="none" selected>' in page
    assert "No tasks match these filters." in client.get("/inbox?tab=groups&priority=70").get_data(as_text=True)
    both = client.get("/inbox?tab=groups&q=example&group=reviewers").get_data(as_text=True)
    assert "C-71" in both.split("<tbody>")[1] and "C-72" not in both.split("<tbody>")[1]
    assert client.get("/inbox?tab=groups&due=whenever&priority=x&group=purchasing").status_code == 200


def test_shipped_complaint_process_declares_its_case(client, runtime, complaint_process):
    response = client.post("/api/v1/complaints", json={"customer_name": "Greta Gruber", "customer_email": "g@example.com",
                                                       "product": "Kettle K2", "description": "The lid cracked"})
    assert response.status_code == 201, response.get_json()
    reference = response.get_json()["reference"]
    lead = token(client, "lena.lead")
    (task, *_) = client.get("/api/v1/tasks?q=greta gruber", headers=lead).get_json()
    assert task["case"]["reference"] == reference and task["case"]["title"] == "Greta Gruber"
    assert "Product concerned: Kettle K2" in task["case"]["summary"]  # the start form's label
    assert {t["case"]["reference"] for t in client.get(f"/api/v1/tasks?q={reference}", headers=lead).get_json()} \
        == {reference}
