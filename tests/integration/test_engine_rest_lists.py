"""/engine-rest's task and process-instance lists and counts are right past 1,000 rows: filters,
sorting and paging run in SQL (storage/camunda_queries.py), `variables` conditions page in batches
(engine/runtime/lists.py), and a user sees only what the visibility rule lets them see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from storage.models import HumanTask, HumanTaskGroup, ProcessDefinition, ProcessInstance
from tests.integration.conftest import basic

N = 1100
PURCHASING_FROM = 1050  # tasks 1050.. are offered to purchasing (beyond the first 1,000), the others to reviewers
SPECIAL = 1075  # the one task named "Special"


def _task_id(i: int) -> str:
    return f"t-{i:05d}"


def _instance_id(i: int) -> str:
    return f"{i:032x}"


@pytest.fixture
def many(app, db):
    """N running simple_review instances, one waiting task each, written in bulk (the lists read
    rows only; no workflow is restored). In the default orders task i is the i-th (due dates all
    unset, so by age) and instance i the (N-1-i)-th (newest first)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with db.write_engine.begin() as conn:
        definition = conn.execute(select(ProcessDefinition.id).where(ProcessDefinition.key == "simple_review")
                                  .order_by(ProcessDefinition.version.desc())).scalars().first()
        conn.execute(insert(ProcessInstance), [
            {"id": _instance_id(i), "definition_id": definition, "process_key": "simple_review", "process_version": 1,
             "business_key": f"B-{i:04d}", "status": "running", "state": b"{}", "data": {"amount": i},
             "started_at": start + timedelta(minutes=i), "started_by": "test", "ended_at": None, "version": 1}
            for i in range(N)])
        conn.execute(insert(HumanTask), [
            {"id": _task_id(i), "instance_id": _instance_id(i), "process_key": "simple_review",
             "spec_id": "Task_Assess", "name": "Special" if i == SPECIAL else "Assess request", "state": "open",
             "assignee": None, "candidate_groups": [], "priority": 50, "due_at": None, "follow_up_at": None,
             "form": [], "documentation": None, "created_at": start + timedelta(minutes=i)} for i in range(N)])
        conn.execute(insert(HumanTaskGroup), [
            {"task_id": _task_id(i), "group_name": "purchasing" if i >= PURCHASING_FROM else "reviewers"}
            for i in range(N)])
    return N


def _get(rest, path: str, user: str, **query) -> object:
    answer = rest.get(f"/engine-rest{path}", headers=basic(user), query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_task_list_and_count_past_a_thousand(rest, many):
    lead = "lena.lead"
    last = _get(rest, "/task", lead, firstResult=1090, maxResults=20)
    assert [t["id"] for t in last] == [_task_id(i) for i in range(1090, N)]
    assert [t["id"] for t in _get(rest, "/task", lead, name="Special")] == [_task_id(SPECIAL)]
    assert _get(rest, "/task/count", lead) == {"count": N}
    assert [t["id"] for t in _get(rest, "/task", lead, nameLike="Spec%")] == [_task_id(SPECIAL)]
    assert _get(rest, "/task", lead, nameLike="spec%") == []  # case-sensitive on both databases
    assert [t["processInstanceId"] for t in _get(rest, "/task", lead, processInstanceBusinessKey="B-1080")] == \
        [_instance_id(1080)]
    assert _get(rest, "/task/count", lead, candidateGroup="purchasing") == {"count": N - PURCHASING_FROM}
    newest = _get(rest, "/task", lead, sortBy="created", sortOrder="desc", maxResults=2)
    assert [t["id"] for t in newest] == [_task_id(N - 1), _task_id(N - 2)]
    by_id = _get(rest, "/task", lead, sortBy="id", sortOrder="asc", firstResult=1099)
    assert [t["id"] for t in by_id] == [_task_id(N - 1)]
    # a page is at most 1,000 tasks (TASK_PAGE); firstResult pages on past it
    assert len(_get(rest, "/task", lead, maxResults=5000)) == 1000
    assert len(_get(rest, "/task", lead, maxResults=5000, firstResult=1000)) == 100
    unknown = rest.get("/engine-rest/task", headers=basic(lead), query_string={"sortBy": "nope", "sortOrder": "asc"})
    assert unknown.status_code == 400 and unknown.get_json()["type"] == "InvalidRequestException"


def test_a_user_sees_only_the_tasks_of_their_groups(rest, many):
    """rita (reviewers) and otto (purchasing) each see their groups' tasks in the list and the count,
    and nothing of the other group's, even by id, name or business key."""
    assert _get(rest, "/task", "rita.reviewer", firstResult=1040, maxResults=20) == \
        _get(rest, "/task", "lena.lead", firstResult=1040, maxResults=10)
    assert _get(rest, "/task", "rita.reviewer", name="Special") == []
    assert _get(rest, "/task", "rita.reviewer", taskId=_task_id(1090)) == []
    assert _get(rest, "/task/count", "rita.reviewer") == {"count": PURCHASING_FROM}
    assert _get(rest, "/task/count", "otto.outsider") == {"count": N - PURCHASING_FROM}
    assert _get(rest, "/task/count", "rita.reviewer", candidateGroup="purchasing") == {"count": 0}
    seen = _get(rest, "/task", "otto.outsider", maxResults=1000)
    assert [t["id"] for t in seen] == [_task_id(i) for i in range(PURCHASING_FROM, N)]
    # a candidate query for another user answers within what the caller sees
    assert _get(rest, "/task/count", "otto.outsider", candidateUser="rita.reviewer") == {"count": 0}
    assert _get(rest, "/task/count", "lena.lead", candidateUser="rita.reviewer") == {"count": PURCHASING_FROM}


def test_process_instance_list_and_count_past_a_thousand(rest, many):
    worker = "erp.worker"  # workers, leads and admins see every instance
    assert _get(rest, "/process-instance/count", worker) == {"count": N}
    last = _get(rest, "/process-instance", worker, firstResult=1090, maxResults=20)
    assert [i["id"] for i in last] == [_instance_id(i) for i in range(9, -1, -1)]  # newest first
    assert [i["id"] for i in _get(rest, "/process-instance", worker, businessKey="B-1080")] == [_instance_id(1080)]
    assert _get(rest, "/process-instance/count", worker, businessKeyLike="B-10%") == {"count": 100}
    by_key = _get(rest, "/process-instance", worker, sortBy="businessKey", sortOrder="asc", firstResult=1098)
    assert [i["businessKey"] for i in by_key] == ["B-1098", "B-1099"]
    # variables: compared in Python, read in batches until the page is full
    assert _get(rest, "/process-instance/count", worker, variables="amount_gteq_1095") == {"count": 5}
    assert _get(rest, "/process-instance/count", worker, variables="amount_gteq_0") == {"count": N}
    late = _get(rest, "/process-instance", worker, variables="amount_lt_5000", firstResult=1090, maxResults=20)
    assert [i["id"] for i in late] == [_instance_id(i) for i in range(9, -1, -1)]
    few = _get(rest, "/process-instance", worker, variables="amount_lteq_3", sortBy="instanceId", sortOrder="asc")
    assert [i["id"] for i in few] == [_instance_id(i) for i in range(4)]
    # a page is at most 500 instances (INSTANCE_PAGE); firstResult pages on past it
    assert len(_get(rest, "/process-instance", worker, maxResults=5000, firstResult=1000)) == 100


def test_a_user_sees_only_the_instances_of_their_groups_tasks(rest, many):
    assert _get(rest, "/process-instance/count", "otto.outsider") == {"count": N - PURCHASING_FROM}
    assert _get(rest, "/process-instance/count", "rita.reviewer") == {"count": PURCHASING_FROM}
    assert _get(rest, "/process-instance", "rita.reviewer", businessKey="B-1080") == []
    mine = _get(rest, "/process-instance", "otto.outsider", variables="amount_gteq_0", maxResults=500)
    assert sorted(i["id"] for i in mine) == [_instance_id(i) for i in range(PURCHASING_FROM, N)]


def _post(rest, path: str, user: str, payload: dict, status: int = 200, **query) -> object:
    answer = rest.post(f"/engine-rest{path}", headers=basic(user), json=payload, query_string=query)
    assert answer.status_code == status, answer.get_json()
    return answer.get_json()


def test_json_queries(rest, many):
    """POST /task, /process-instance and their counts take Camunda's JSON query (lists as arrays,
    `sorting`, `variables` as [{name, operator, value}]); paging stays in the query string."""
    lead, worker = "lena.lead", "erp.worker"
    last = _post(rest, "/task", lead, {}, firstResult=1090, maxResults=20)
    assert [t["id"] for t in last] == [_task_id(i) for i in range(1090, N)]
    assert _post(rest, "/task/count", lead, {"candidateGroups": ["purchasing"]}) == {"count": N - PURCHASING_FROM}
    assert _post(rest, "/task/count", "rita.reviewer", {}) == {"count": PURCHASING_FROM}
    assert _post(rest, "/task/count", "rita.reviewer", {"taskDefinitionKeyIn": ["Task_Assess"],
                                                        "unassigned": True}) == {"count": PURCHASING_FROM}
    newest = _post(rest, "/task", lead, {"sorting": [{"sortBy": "name", "sortOrder": "desc"},
                                                     {"sortBy": "created", "sortOrder": "desc"}]}, maxResults=2)
    assert [t["id"] for t in newest] == [_task_id(SPECIAL), _task_id(N - 1)]  # "Special" > "Assess request"
    assert _post(rest, "/task", lead, {"tenantIdIn": ["t1"]}) == []
    assert _post(rest, "/task/count", lead, {"assigneeIn": "not-a-list"}, status=400)["type"] == \
        "InvalidRequestException"
    assert _post(rest, "/task", lead, {"sorting": [{"sortBy": "nope"}]}, status=400)["type"] == \
        "InvalidRequestException"

    amount = {"name": "amount", "operator": "gteq", "value": 1095}
    assert _post(rest, "/process-instance/count", worker, {"variables": [amount]}) == {"count": 5}
    assert _post(rest, "/process-instance/count", "otto.outsider", {"variables": [amount]}) == {"count": 5}
    assert _post(rest, "/process-instance/count", "rita.reviewer", {"variables": [amount]}) == {"count": 0}
    by_key = _post(rest, "/process-instance", worker, {"sorting": [{"sortBy": "businessKey", "sortOrder": "asc"}]},
                   firstResult=1098)
    assert [i["businessKey"] for i in by_key] == ["B-1098", "B-1099"]
    assert [i["id"] for i in _post(rest, "/process-instance", worker, {"processInstanceIds": [_instance_id(7)]})] == \
        [_instance_id(7)]
    assert _post(rest, "/process-instance", worker, {"variables": [{**amount, "operator": "nope"}]},
                 status=400)["message"] == "Invalid variable comparator specified: nope"
