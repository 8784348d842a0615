"""Two scheduler processes meeting a scheduler cursor that does not exist yet (a fresh database):
both create it at the same moment. Found by the scale-out load test: the second INSERT failed with
a unique violation, so that scheduler's notification pass logged a traceback and did nothing."""

from __future__ import annotations

import threading

from engine import clock, notifications
from storage.db import Database
from tests.conftest import make_db, wait_for_a_lock_wait


def test_a_cursor_created_by_two_schedulers_at_once_is_no_error(pg_database, tmp_path):
    db = make_db("postgresql", tmp_path, pg_database)  # on SQLite write transactions never overlap
    try:
        _race(db)
    finally:
        db.dispose()


def _race(db: Database) -> None:
    outcome: list[object] = []

    def second_scheduler() -> None:
        try:
            outcome.append(notifications.notify_task_events(db))
        except Exception as exc:  # what the scheduler pass would log
            outcome.append(exc)

    with db.write() as session:  # the first scheduler: cursor created, not yet committed
        notifications.audit_events_since(session, notifications.EVENTS_CURSOR, ("task_created",), clock.now(), 10)
        other = threading.Thread(target=second_scheduler)
        other.start()
        wait_for_a_lock_wait(db, "the second scheduler")  # until it waits for this transaction's cursor row
    other.join(30)
    assert outcome == [0]
