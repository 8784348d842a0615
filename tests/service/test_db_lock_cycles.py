"""Two write units that lock the same rows in opposite orders (two instances each delivering an event to
the other's instance): PostgreSQL breaks the cycle by ending one transaction, which surfaces as the
usual ConcurrentUpdateError (a 409 to an API caller, a retry to the scheduler), never a crash."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from storage.errors import ConcurrentUpdateError


def test_a_lock_cycle_is_a_concurrent_update_not_a_crash(db):
    if db.dialect != "postgresql":
        pytest.skip("SQLite writes one unit at a time: no lock cycles")
    with db.write() as session:
        session.execute(text("INSERT INTO app_group (name) VALUES ('cycle_a'), ('cycle_b')"))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def lock(first: str, second: str) -> None:
        try:
            with db.write() as session:
                session.execute(text("SELECT id FROM app_group WHERE name = :n FOR UPDATE"), {"n": first})
                barrier.wait()
                session.execute(text("SELECT id FROM app_group WHERE name = :n FOR UPDATE"), {"n": second})
            outcomes.append("ok")
        except ConcurrentUpdateError:
            outcomes.append("conflict")
        except BaseException as exc:  # anything else is what this test guards against
            outcomes.append(f"error: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=lock, args=pair) for pair in (("cycle_a", "cycle_b"), ("cycle_b", "cycle_a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["conflict", "ok"]
