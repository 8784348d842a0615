"""External tasks in the engine (engine/external_tasks.py): created when the token arrives, locked
by one worker, completed, failed (retries, incident, set retries), BPMN error, lock expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from engine import clock
from engine import external_tasks as xt
from engine.errors import NotFoundError, PermissionDeniedError
from engine.views import Actor

MODELS = Path(__file__).parent.parent / "constructs" / "models"
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
WORKER = Actor("erp.worker", frozenset({"worker"}), "worker")
EMPLOYEE = Actor("rita", frozenset({"reviewers"}), "employee")


@pytest.fixture
def lookup(runtime):
    runtime.deploy_paths([MODELS / "xt_order_lookup.bpmn"], LEAD)
    clock.reset()
    yield runtime
    clock.reset()


def _fetch(runtime, worker="w1", lock_ms=60_000, topic="erp-lookup", **kw):
    return xt.fetch_and_lock(runtime, WORKER, worker, [xt.TopicRequest(topic, lock_ms)], **kw)


def test_token_waits_and_completion_moves_on(lookup):
    instance = lookup.start("xt_order_lookup", {"order": "A-17"}, LEAD)
    assert instance.status == "running"
    [task] = _fetch(lookup, max_tasks=5)
    assert (task.topic, task.activity_id, task.priority, task.variables) == ("erp-lookup", "lookup", 5, {"order": "A-17"})
    assert _fetch(lookup, "w2") == []  # locked: nobody else gets it
    xt.complete(lookup, WORKER, task.id, "w1", {"amount": 120.5})
    done = lookup.instance(instance.id)
    assert done.status == "completed"
    assert done.data["amount"] == 120.5 and done.data["path"] == "found"
    assert xt.list_tasks(lookup, WORKER, instance_id=instance.id) == []


def test_only_the_lock_holder_completes(lookup):
    lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup, "w1")
    with pytest.raises(xt.LockMismatchError):
        xt.complete(lookup, WORKER, task.id, "w2", {})
    with pytest.raises(PermissionDeniedError):
        _fetch_as(lookup, EMPLOYEE)


def test_completing_twice_or_an_unknown_task_is_not_found(lookup):
    lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup, "w1")
    xt.complete(lookup, WORKER, task.id, "w1", {})
    for task_id in (task.id, "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFoundError):
            xt.complete(lookup, WORKER, task_id, "w1", {})


def test_a_round_trip_is_few_statements(lookup, db):
    """The hot path's SQL: a fetch is one statement (the claim returns the rows with their instance's
    variables); a complete four (lock the instance through the task, reading its external-task rows
    with it; check the lock and close the task; the instance update; the audit) — no human-task read
    for a process without user tasks."""
    lookup.start("xt_order_lookup", {}, LEAD)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0])

    engines = {db.engine, db.write_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        [task] = _fetch(lookup, "w1")
        fetch, statements[:] = list(statements), []
        xt.complete(lookup, WORKER, task.id, "w1", {"amount": 1})
        complete = list(statements)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    fetch = [s for s in fetch if s.upper() not in ("BEGIN", "COMMIT")]  # SQLite's own BEGIN IMMEDIATE
    complete = [s for s in complete if s.upper() not in ("BEGIN", "COMMIT")]
    assert fetch == ["UPDATE"]
    assert complete == ["SELECT", "UPDATE", "UPDATE", "INSERT"]
    assert lookup.instance(task.instance_id).status == "completed"


def _fetch_as(runtime, actor):
    return xt.fetch_and_lock(runtime, actor, "w", [xt.TopicRequest("erp-lookup", 1000)])


def test_expired_lock_lets_another_worker_take_it(lookup):
    lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup, "w1", lock_ms=1000)
    clock.advance(timedelta(seconds=2))
    [again] = _fetch(lookup, "w2")
    assert again.id == task.id and again.worker_id == "w2"
    with pytest.raises(xt.LockMismatchError):
        xt.complete(lookup, WORKER, task.id, "w1", {})
    xt.complete(lookup, WORKER, task.id, "w2", {})


def test_failures_then_incident_then_retries(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup)
    xt.handle_failure(lookup, WORKER, task.id, "w1", "ERP down", "stack", retries=1, retry_timeout_ms=10_000)
    assert _fetch(lookup) == []  # not before the retry timeout
    clock.advance(timedelta(seconds=11))
    [task] = _fetch(lookup)
    assert (task.retries, task.error_message) == (1, "ERP down")
    xt.handle_failure(lookup, WORKER, task.id, "w1", "ERP still down", "trace", retries=0, retry_timeout_ms=0)
    stuck = lookup.instance(instance.id)
    assert stuck.status == "incident"
    assert [i.message for i in stuck.incidents] == ["ERP still down"]
    assert _fetch(lookup) == []
    assert xt.error_details(lookup, WORKER, task.id) == "trace"
    xt.set_retries(lookup, LEAD, task.id, 2)
    resolved = lookup.instance(instance.id)
    assert resolved.status == "running" and resolved.incidents[0].resolved_at is not None
    [task] = _fetch(lookup)
    xt.complete(lookup, WORKER, task.id, "w1", {})
    assert lookup.instance(instance.id).status == "completed"


def test_setting_retries_leaves_a_held_lock_alone(lookup):
    """Retries set on a task a worker holds (no incident) change its retries, not who holds it: another
    worker does not get it, the holder completes it (Camunda keeps the lock too)."""
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup, "w1")
    xt.set_retries(lookup, LEAD, task.id, 5)
    assert _fetch(lookup, "w2") == []
    assert xt.get(lookup, WORKER, task.id).retries == 5
    xt.complete(lookup, WORKER, task.id, "w1", {})
    assert lookup.instance(instance.id).status == "completed"


def test_lead_retry_of_the_instance_rearms_the_task(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup)
    xt.handle_failure(lookup, WORKER, task.id, "w1", "boom", None, retries=0, retry_timeout_ms=0)
    lookup.retry(instance.id, LEAD)
    [again] = _fetch(lookup)
    assert again.retries == 1


def test_bpmn_error_takes_the_boundary_path(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup)
    xt.handle_bpmn_error(lookup, WORKER, task.id, "w1", "ORDER_UNKNOWN", "no such order", {"reason": "typo"})
    done = lookup.instance(instance.id)
    assert done.status == "completed" and done.data["path"] == "unknown" and done.data["reason"] == "typo"
    with pytest.raises(NotFoundError):
        xt.complete(lookup, WORKER, task.id, "w1", {})


def test_uncaught_bpmn_error_ends_the_path(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup)
    xt.handle_bpmn_error(lookup, WORKER, task.id, "w1", "SOMETHING_ELSE", None, {})
    done = lookup.instance(instance.id)
    assert done.status == "completed" and "path" not in done.data


def test_cancelling_the_instance_closes_the_task(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    lookup.cancel(instance.id, LEAD)
    assert _fetch(lookup) == []


def test_long_poll_answers_when_work_appears(lookup):
    import threading
    import time

    got: list = []
    poller = threading.Thread(target=lambda: got.extend(_fetch(lookup, wait_ms=5000)))
    began = time.monotonic()
    poller.start()
    time.sleep(0.3)
    lookup.start("xt_order_lookup", {}, LEAD)
    poller.join(10)
    assert len(got) == 1 and time.monotonic() - began < 3
    assert _fetch(lookup, wait_ms=200) == []  # nothing more: answers empty after the wait


def test_completing_after_the_last_failure_ends_the_incident(lookup):
    instance = lookup.start("xt_order_lookup", {}, LEAD)
    [task] = _fetch(lookup)
    xt.handle_failure(lookup, WORKER, task.id, "w1", "flaky", None, retries=0, retry_timeout_ms=0)
    assert lookup.instance(instance.id).status == "incident"
    xt.complete(lookup, WORKER, task.id, "w1", {"late": True})  # the worker still held the lock
    done = lookup.instance(instance.id)
    assert done.status == "completed" and all(i.resolved_at for i in done.incidents)


def test_fetch_takes_the_oldest_first_and_honours_the_filters(lookup):
    ids = []
    for key in ("C-1", "C-2", "C-3"):
        ids.append(lookup.start("xt_order_lookup", {"order": key}, LEAD, business_key=key).id)
        clock.advance(timedelta(seconds=1))
    [only] = xt.fetch_and_lock(lookup, WORKER, "w1", [xt.TopicRequest("erp-lookup", 60_000, business_key="C-2")])
    assert only.instance_id == ids[1] and only.business_key == "C-2"
    assert xt.fetch_and_lock(lookup, WORKER, "w1", [xt.TopicRequest("erp-lookup", 60_000, process_key="other")]) == []
    rest = _fetch(lookup, max_tasks=10)
    assert [t.instance_id for t in rest] == [ids[0], ids[2]]  # by age; the locked one is not offered again
    assert all(t.worker_id == "w1" and t.lock_expires_at > clock.now() for t in rest)
    assert _fetch(lookup, worker="w2", max_tasks=10) == []


def test_concurrent_fetches_never_lock_a_task_twice(lookup):
    import threading

    started = {lookup.start("xt_order_lookup", {"order": f"A-{i}"}, LEAD).id for i in range(24)}
    barrier = threading.Barrier(6)
    taken: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        barrier.wait()
        mine = taken.setdefault(name, [])
        while True:
            got = _fetch(lookup, worker=name, max_tasks=3)
            if not got:
                return
            mine.extend(t.id for t in got)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [task_id for ids in taken.values() for task_id in ids]
    assert len(every) == len(set(every)) == 24
    holders = {t.id: t.worker_id for t in xt.list_tasks(lookup, WORKER) if t.instance_id in started}
    assert all(holders[task_id] == name for name, ids in taken.items() for task_id in ids)


def test_completions_racing_in_one_instance_see_each_others_rows(runtime, monkeypatch):
    """Two workers complete the two parallel tasks of one instance at once. The second waits for the
    first's instance lock; what it then knows of the instance's external-task rows must include the
    first's changes (on PostgreSQL its lock statement's snapshot predates them): no task is reported
    cancelled and the task after the join gets one row."""
    import threading
    import time

    runtime.deploy_paths([MODELS / "xt_parallel_loop.bpmn"], LEAD)
    instance = runtime.start("xt_parallel_loop", {}, LEAD)
    [credit] = _fetch(runtime, topic="credit")
    [notify] = _fetch(runtime, topic="notify")
    locked = threading.Event()
    finish_held = xt.store.finish_held
    owner: list[threading.Thread] = []

    def slow_finish(conn, task_id, *args):  # the first completion holds the instance lock a while
        row = finish_held(conn, task_id, *args)
        if task_id == credit.id:
            locked.set()
            time.sleep(0.6)
        return row

    monkeypatch.setattr(xt.store, "finish_held", slow_finish)
    errors: list[BaseException] = []

    def complete(task_id):
        try:
            xt.complete(runtime, WORKER, task_id, "w1", {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    owner.append(threading.Thread(target=complete, args=(credit.id,)))
    owner[0].start()
    assert locked.wait(10)
    second = threading.Thread(target=complete, args=(notify.id,))
    second.start()  # its lock statement starts (and waits) while the first holds the lock
    owner[0].join(10)
    second.join(10)
    assert errors == []
    audit = [e.type for e in runtime.instance(instance.id).audit]
    assert "external_task_cancelled" not in audit
    assert [t.activity_id for t in xt.list_tasks(runtime, WORKER, instance_id=instance.id)] == ["check"]
