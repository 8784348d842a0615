"""Dashboard, ISO report, exports and GET /api/v1/kpis: access rules and content."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from engine.kpis import refresh_facts
from storage.kpi_facts import ActionFact, ComplaintFact
from tests.conftest import sql_statements
from tests.integration.conftest import login, start_review, token

NOW = datetime.now(UTC)
TODAY = NOW.date()


@pytest.fixture
def facts(db):
    received = NOW - timedelta(days=10)
    with db.write() as s:
        s.execute(insert(ComplaintFact), [
            {"instance_id": "a1", "process_key": "complaint_to_improvement", "kind": "complaint", "reference": "K-1",
             "instance_status": "completed", "status": "closed", "received_at": received,
             "acknowledged_at": received + timedelta(hours=2), "ack_seconds": 7200.0,
             "closed_at": received + timedelta(days=2), "close_seconds": 2 * 86400.0, "category": "delivery",
             "product": "=cmd|' /C calc'!A0", "customer": "Maria", "valid": True, "rca_loops": 1,
             "effective_first_check": False, "effective": True, "root_cause": "Late carrier", "csat": 4, "nps": 10},
            {"instance_id": "a2", "process_key": "customer_feedback", "kind": "feedback", "reference": "F-1",
             "instance_status": "completed", "status": "closed", "received_at": received,
             "closed_at": received + timedelta(hours=3), "rca_loops": 0, "csat": 2, "nps": 5,
             "feedback_type": "praise"},
        ])
        s.execute(insert(ActionFact), [
            {"instance_id": "a1", "action_id": "1-1", "round": 1, "owner": "ann", "what": "Change carrier",
             "due_on": TODAY - timedelta(days=5), "done_on": TODAY - timedelta(days=6), "effective": False},
            {"instance_id": "a1", "action_id": "2-1", "round": 2, "owner": "bob", "what": "Audit carrier",
             "due_on": TODAY - timedelta(days=1), "done_on": None, "effective": True},
        ])


def test_pages_need_a_lead(client):
    for path in ("/dashboard", "/reports/iso9001", "/dashboard/export/complaints.csv", "/dashboard/export.xlsx"):
        assert client.get(path).status_code == 302  # to sign-in
    login(client, "rita.reviewer")
    for path in ("/dashboard", "/reports/iso9001", "/dashboard/export/complaints.csv", "/dashboard/export.xlsx"):
        assert client.get(path).status_code == 403


def test_dashboard_shows_figures_charts_and_tables(client, facts, db):
    login(client, "lena.lead")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "figures not computed yet" in html  # the facts above were written directly, never refreshed
    refresh_facts(db)
    html = client.get("/dashboard").get_data(as_text=True)
    assert "figures as of" in html
    assert "KPI dashboard" in html and "<svg" in html
    # charts are drawn on the server; the only scripts are the heat map's viewer files (no inline code)
    scripts = re.findall(r"<script[^>]*>", html)
    assert all('src="/static/' in tag or 'type="application/json"' in tag for tag in scripts), scripts
    assert "Complaints per category" in html and "delivery" in html and "Late carrier" in html
    assert 'role="img"' in html and "<table" in html
    # the tiles at the top, each with its change against the previous 90 days (nothing then)
    assert html.index('class="tiles"') < html.index('class="charts"')
    assert re.search(r'data-kpi="received">\s*<span class="tile-label">Complaints received</span>\s*'
                     r'<strong class="tile-value">1</strong>', html)
    assert "previous 90 days" in html
    assert html.count("<figcaption>") == 0 and html.count("<caption>") == 0  # one heading per chart
    bad = client.get("/dashboard?from=nonsense")
    assert bad.status_code == 422
    # an inverted period is no dead end: the form again with what was sent, an error summary linking to
    # the field (which names its message), and the figures of the default period
    bad = client.get("/dashboard?from=2026-03-10&to=2026-03-01")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="error-summary"' in html
    assert "<a href=\"#f_from\">From must not be after &#39;to&#39;</a>" in html
    assert 'id="f_from" name="from" value="2026-03-10" aria-invalid="true" aria-describedby="f_from_err"' in html
    assert 'id="f_to" name="to" value="2026-03-01"' in html and 'class="tiles"' in html
    html = client.get(f"/dashboard?from={TODAY - timedelta(days=400)}&to={TODAY}&granularity=month").get_data(
        as_text=True)
    assert "Received and closed per month" in html


def test_dashboard_and_report_show_category_names(client, facts, db, complaint_process):
    """Categories are stored as the triage form's option ids and shown by the option's name."""
    refresh_facts(db)
    login(client, "lena.lead")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "<td>Delivery (late, incomplete, wrong address)</td>" in html
    assert '<option value="delivery" >Delivery (late, incomplete, wrong address)</option>' in html
    report = client.get("/reports/iso9001").get_data(as_text=True)
    assert "Delivery (late, incomplete, wrong address) / —" in report


def test_iso_report(client, facts):
    login(client, "ada.admin")
    html = client.get("/reports/iso9001").get_data(as_text=True)
    assert "§9.1.2" in html and "§10.2" in html
    assert "K-1" in html and "Change carrier" in html and "bob" in html and "F-1" not in html


def test_exports_open_and_contain_the_rows(client, facts):
    login(client, "lena.lead")
    response = client.get("/dashboard/export/complaints.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["reference"] for r in rows] == ["K-1"]
    assert rows[0]["product"].startswith("'=")  # no formula injection
    rows = list(csv.DictReader(io.StringIO(client.get("/dashboard/export/actions.csv").get_data(as_text=True))))
    assert [(r["action_id"], r["on_time"], r["overdue"]) for r in rows] == [("1-1", "True", "False"),
                                                                           ("2-1", "", "True")]
    rows = list(csv.DictReader(io.StringIO(client.get("/dashboard/export/surveys.csv").get_data(as_text=True))))
    assert sorted((r["reference"], r["nps_group"]) for r in rows) == [("F-1", "detractor"), ("K-1", "promoter")]
    assert client.get("/dashboard/export/other.csv").status_code == 404
    book = load_workbook(io.BytesIO(client.get("/dashboard/export.xlsx").get_data()))
    assert book.sheetnames == ["complaints", "actions", "surveys"]
    assert [c.value for c in book["complaints"][2]][0] == "K-1"
    assert book["actions"].max_row == 3 and book["surveys"].max_row == 3


def test_api_kpis(client, facts):
    assert client.get("/api/v1/kpis").status_code == 401
    assert client.get("/api/v1/kpis", headers=token(client, "rita.reviewer")).status_code == 403
    headers = token(client, "lena.lead")
    body = client.get(f"/api/v1/kpis?from={TODAY - timedelta(days=30)}&to={TODAY}", headers=headers).get_json()
    assert body["complaints"]["received"] == 1 and body["complaints"]["closed"] == 1
    assert body["acknowledge"]["median_hours"] == 2.0 and body["close"]["median_days"] == 2.0
    assert body["satisfaction"]["csat"]["average"] == 3.0 and body["satisfaction"]["nps"]["score"] == 0.0
    assert body["actions"]["due_in_period"] == 2 and body["actions"]["overdue"] == 1
    assert body["effectiveness"]["share_effective_first_check"] == 0.0
    empty = client.get("/api/v1/kpis?from=2020-01-01&to=2020-01-31", headers=headers).get_json()
    assert empty["complaints"]["received"] == 0 and date.fromisoformat(empty["period"]["to"]) == date(2020, 1, 31)
    bad = client.get("/api/v1/kpis?from=2026-02-30", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == "from"
    assert "/kpis" in client.get("/api/v1/openapi.json").get_json()["paths"]


def writes(seen: list[str]) -> list[str]:
    """Statements that change data or take write locks (SQLite BEGIN IMMEDIATE, FOR UPDATE)."""
    return [s for s in seen if s.split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "MERGE")
            or s.upper().startswith("BEGIN IMMEDIATE") or " FOR UPDATE" in s.upper()]


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/export/complaints.csv", "/dashboard/export/actions.csv",
                                  "/dashboard/export/surveys.csv", "/dashboard/export.xlsx", "/reports/iso9001",
                                  "/api/v1/kpis"])
def test_kpi_reads_never_write(client, runtime, db, facts, path):
    """KPI pages, exports and GET /api/v1/kpis only read: the fact tables are refreshed by the
    scheduler pass (engine.kpis.refresh_facts), never by a request."""
    login(client, "lena.lead")
    headers = token(client, "lena.lead") if path.startswith("/api/") else {}
    start_review(runtime, "W-1")  # audit events the facts have not seen yet: the old GETs refreshed here
    with sql_statements(db) as seen:
        assert client.get(path, headers=headers).status_code == 200
    found = writes(seen)
    if headers:  # bearer-token sign-in records the token's last use (engine.directory): not a KPI write
        found = [s for s in found if not s.startswith(("UPDATE api_token SET last_used_at", "BEGIN IMMEDIATE"))]
    assert seen and found == []
