"""Start, claim, unclaim, complete with permission checks; assignment and dates from the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from engine.errors import ConflictError, InvalidStateError, NotFoundError, PermissionDeniedError
from tests.fixtures.runtime.helpers import (
    AUDITOR,
    LEAD,
    OUTSIDER,
    REVIEWER,
    REVIEWER2,
    add_users,
    deploy,
    only_open,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def started(runtime, db):
    from engine.accounts import save_user

    save_user(db, "rita.reviewer", "employee", password="correct-horse-9", groups=["reviewers"])  # reassigned to
    save_user(db, "olga.owner", "employee", password="correct-horse-9")  # the computed assignee
    deploy(runtime, "assign")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2026-04-01T12:00:00Z"}, LEAD)
    return instance


def test_group_member_claims_and_completes(runtime, started):
    task = only_open(started)
    assert task.name == "Review" and task.state == "open" and task.assignee is None
    assert task.groups == ["auditors", "reviewers"]  # comma list, trimmed
    assert [t.id for t in runtime.tasks(REVIEWER)] == [task.id]
    claimed = runtime.claim(task.id, REVIEWER)
    assert claimed.state == "claimed" and claimed.assignee == REVIEWER.username
    assert runtime.claim(task.id, REVIEWER).assignee == REVIEWER.username  # idempotent for the holder
    instance = runtime.complete(task.id, REVIEWER, {"note": "looks fine"})
    done = next(t for t in instance.tasks if t.id == task.id)
    assert done.state == "completed" and done.completed_by == REVIEWER.username
    assert done.values == {"note": "looks fine"}
    assert instance.data["note"] == "looks fine"
    assert only_open(instance).name == "Owner acts"


def test_member_may_complete_without_claiming(runtime, started):
    task = only_open(started)
    instance = runtime.complete(task.id, AUDITOR, {})
    assert next(t for t in instance.tasks if t.id == task.id).completed_by == AUDITOR.username


def test_outsider_cannot_see_claim_or_complete(runtime, started):
    task = only_open(started)
    assert runtime.tasks(OUTSIDER) == []
    assert runtime.tasks(OUTSIDER, state="open") == []
    with pytest.raises(NotFoundError):
        runtime.task(task.id, OUTSIDER)
    with pytest.raises(NotFoundError):
        runtime.claim(task.id, OUTSIDER)
    with pytest.raises(NotFoundError):
        runtime.complete(task.id, OUTSIDER, {})
    runtime.claim(task.id, REVIEWER)
    with pytest.raises(NotFoundError):
        runtime.unclaim(task.id, OUTSIDER)
    with pytest.raises(NotFoundError):  # a task he may not see: 404 (its name stays hidden), not 409
        runtime.complete(task.id, OUTSIDER, {})
    # nothing changed
    view = runtime.task(task.id, REVIEWER)
    assert view.state == "claimed" and view.assignee == REVIEWER.username
    assert [a.type for a in runtime.instance(started.id).audit].count("complete") == 0


def test_personal_task_is_invisible_to_others_and_held_for_the_lead(runtime, started):
    first = only_open(started)
    instance = runtime.complete(first.id, REVIEWER, {})
    owner_task = only_open(instance)
    assert owner_task.assignee == "olga.owner"
    with pytest.raises(NotFoundError):
        runtime.task(owner_task.id, REVIEWER)
    with pytest.raises(NotFoundError):
        runtime.complete(owner_task.id, REVIEWER, {})
    # the lead sees it, but it is held by olga
    assert runtime.task(owner_task.id, LEAD).assignee == "olga.owner"
    with pytest.raises(ConflictError, match="olga.owner"):
        runtime.claim(owner_task.id, LEAD)
    with pytest.raises(ConflictError, match="olga.owner"):
        runtime.complete(owner_task.id, LEAD, {})


def test_claimed_by_a_blocks_b(runtime, started):
    task = only_open(started)
    runtime.claim(task.id, REVIEWER)
    with pytest.raises(ConflictError, match=REVIEWER.username):
        runtime.claim(task.id, REVIEWER2)
    with pytest.raises(ConflictError, match=REVIEWER.username):
        runtime.complete(task.id, REVIEWER2, {})
    with pytest.raises(ConflictError, match=REVIEWER.username):
        runtime.unclaim(task.id, REVIEWER2)
    assert runtime.task(task.id, REVIEWER2).assignee == REVIEWER.username
    # after unclaiming, B may take it
    released = runtime.unclaim(task.id, REVIEWER)
    assert released.state == "open" and released.assignee is None
    assert runtime.claim(task.id, REVIEWER2).assignee == REVIEWER2.username
    instance = runtime.complete(task.id, REVIEWER2, {})
    assert next(t for t in instance.tasks if t.id == task.id).completed_by == REVIEWER2.username


def test_unclaim_an_open_task_is_a_conflict(runtime, started):
    with pytest.raises(ConflictError):
        runtime.unclaim(only_open(started).id, REVIEWER)


def test_completed_task_cannot_be_completed_again(runtime, started):
    task = only_open(started)
    runtime.complete(task.id, REVIEWER, {})
    with pytest.raises(ConflictError, match="completed"):
        runtime.complete(task.id, REVIEWER, {})
    with pytest.raises(ConflictError):
        runtime.claim(task.id, REVIEWER)


def test_lead_sees_everything_and_may_complete(runtime, started):
    task = only_open(started)
    assert [t.id for t in runtime.tasks(LEAD)] == [task.id]
    assert runtime.task(task.id, LEAD).name == "Review"
    instance = runtime.complete(task.id, LEAD, {})
    owner_task = only_open(instance)
    assert runtime.task(owner_task.id, LEAD).assignee == "olga.owner"
    # a lead can reassign and then the new assignee completes
    runtime.assign(owner_task.id, LEAD, "rita.reviewer")
    assert runtime.task(owner_task.id, REVIEWER).assignee == "rita.reviewer"
    with pytest.raises(PermissionDeniedError):
        runtime.assign(owner_task.id, REVIEWER, "otto.outsider")


def test_assignee_expression_and_lane(runtime, started):
    instance = runtime.complete(only_open(started).id, REVIEWER, {})
    owner_task = only_open(instance)
    olga = type(REVIEWER)("olga.owner", frozenset(), "employee")
    assert owner_task.assignee == "olga.owner" and owner_task.state == "claimed" and owner_task.groups == []
    assert [t.id for t in runtime.tasks(olga, mine=True)] == [owner_task.id]
    assert owner_task.due_at == datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # ${due} -> ISO date-time
    with pytest.raises(NotFoundError):
        runtime.complete(owner_task.id, REVIEWER, {})
    instance = runtime.complete(owner_task.id, olga, {})
    lane_task = only_open(instance)
    assert lane_task.name == "Audit" and lane_task.groups == ["auditors"]  # lane name as group
    with pytest.raises(NotFoundError):
        runtime.task(lane_task.id, REVIEWER)
    instance = runtime.complete(lane_task.id, AUDITOR, {})
    assert instance.status == "completed"


def test_due_follow_up_priority(runtime, started):
    task = only_open(started)
    assert task.due_at == T0 + timedelta(days=2)  # P2D from creation
    assert task.follow_up_at == datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    assert task.priority == 80


def test_due_relative_to_creation_not_to_start(runtime):
    add_users(runtime, "olga.owner")
    deploy(runtime, "assign")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2026-04-01"}, LEAD)
    later = T0 + timedelta(hours=5)
    with time_machine.travel(later, tick=False):
        instance = runtime.complete(only_open(instance).id, REVIEWER, {})
    owner_task = only_open(instance)
    assert owner_task.created_at == later
    # a due *date* means the end of that day
    assert owner_task.due_at == datetime(2026, 4, 1, 23, 59, 59, tzinfo=UTC)


def test_unknown_task_and_instance(runtime, started):
    with pytest.raises(NotFoundError):
        runtime.task("00000000-0000-0000-0000-000000000000", LEAD)
    with pytest.raises(NotFoundError):
        runtime.instance("nope")
    with pytest.raises(NotFoundError):
        runtime.start("no_such_process", {}, LEAD)


def test_cancel_is_lead_only_and_closes_tasks(runtime, started):
    task = only_open(started)
    with pytest.raises(PermissionDeniedError):
        runtime.cancel(started.id, REVIEWER)
    instance = runtime.cancel(started.id, LEAD, "duplicate complaint")
    assert instance.status == "cancelled" and instance.ended_at is not None
    assert [t.state for t in instance.tasks] == ["cancelled"]
    assert runtime.tasks(REVIEWER) == []
    with pytest.raises(ConflictError):
        runtime.complete(task.id, REVIEWER, {})
    with pytest.raises(ConflictError):
        runtime.claim(task.id, REVIEWER)
    with pytest.raises(InvalidStateError):
        runtime.cancel(started.id, LEAD)
    assert [(a.type, a.payload) for a in instance.audit[-2:]] == [
        ("cancel", {"reason": "duplicate complaint"}), ("task_cancelled", {"task": "Review"})]
    with pytest.raises(ConflictError):
        runtime.assign(task.id, LEAD, "rita.reviewer")


def test_literal_due_date_time_relative_follow_up_and_priority_expression(runtime):
    deploy(runtime, "form")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_form", {}, LEAD)
        instance = runtime.complete(only_open(instance).id, REVIEWER, {"count": "7"})
    task = only_open(instance)
    assert task.name == "Next"
    assert task.due_at == datetime(2026, 6, 30, 15, 0, tzinfo=UTC)  # stored in UTC
    assert task.follow_up_at == T0 + timedelta(days=1, hours=12)
    assert task.priority == 70
    # the inbox orders by due date
    assert [t.id for t in runtime.tasks(REVIEWER)] == [task.id]


def test_personal_task_cannot_be_released_to_nobody(runtime, started):
    instance = runtime.complete(only_open(started).id, REVIEWER, {})
    owner_task = only_open(instance)
    olga = type(REVIEWER)("olga.owner", frozenset(), "employee")
    with pytest.raises(InvalidStateError):
        runtime.unclaim(owner_task.id, olga)
    with pytest.raises(InvalidStateError):
        runtime.assign(owner_task.id, LEAD, None)
    assert runtime.task(owner_task.id, olga).assignee == "olga.owner"
    moved = runtime.assign(owner_task.id, LEAD, "rita.reviewer")
    assert moved.assignee == "rita.reviewer" and moved.state == "claimed"
    assert [a.type for a in runtime.instance(started.id).audit][-1] == "assign"
