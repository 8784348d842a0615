"""Input and faults that used to answer 500: a JSON body nested thousands of levels deep, a number
past what the database stores, and a database that is unreachable or locked past its busy timeout
(503 with Retry-After; the next request after the fault works again, without a restart)."""

from __future__ import annotations

import base64
import socket
import sqlite3

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

import storage.db
from storage.db import Database
from tests.conftest import skip_or_fail
from tests.integration.conftest import PASSWORD, token
from web import create_app

LEAD_BASIC = "Basic " + base64.b64encode(f"lena.lead:{PASSWORD}".encode()).decode()


def _nested(levels: int) -> bytes:
    return ("[" * levels + "]" * levels).encode()


def test_complaint_nested_5000_levels_is_a_400(client, complaint_process):
    body = b'{"description": ' + _nested(5000) + b"}"
    response = client.post("/api/v1/complaints", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "too_deep"
    assert "nested too deeply" in response.json["error"]["message"]


def test_nesting_past_the_limit_but_parseable_is_a_400_everywhere(client, complaint_process):
    body = b'{"data": {"x": ' + _nested(100) + b"}}"
    headers = token(client, "lena.lead")
    response = client.post("/api/v1/processes/simple_review/instances", data=body,
                           content_type="application/json", headers=headers)
    assert response.status_code == 400 and "at most 64 levels" in response.json["error"]["message"]
    # Camunda's REST subset answers in its own error shape
    response = client.post("/engine-rest/process-definition/key/simple_review/start", data=_nested(3000),
                           content_type="application/json", headers={"Authorization": LEAD_BASIC})
    assert response.status_code == 400, response.json
    assert response.json["type"] == "InvalidRequestException" and "nested too deeply" in response.json["message"]
    # a reasonably nested body still works
    ok = client.post("/api/v1/processes/simple_review/instances", headers=headers,
                     json={"data": {"reference": "C-9", "x": [[[[1]]]]}})
    assert ok.status_code == 201, ok.json


@pytest.mark.parametrize("version", [10**30, 2**31, -(10**30)])
def test_instance_start_version_out_of_range_is_a_422_naming_the_field(client, version):
    response = client.post("/api/v1/processes/simple_review/instances", headers=token(client, "lena.lead"),
                           json={"data": {"reference": "C-1"}, "version": version})
    assert response.status_code == 422
    assert response.json["error"]["details"][0]["field"] == "version"


def test_unreachable_postgresql_is_a_503_with_retry_after(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    db = Database(f"postgresql+psycopg://u:secret@127.0.0.1:{port}/none?connect_timeout=2")
    client = create_app({"DATABASE": db, "SECRET_KEY": "t", "INSTANCE_DIR": str(tmp_path)}).test_client()
    response = client.get("/api/v1/tasks", headers={"Authorization": "Bearer some-token"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["error"]["code"] == "database_unavailable"
    assert "secret" not in response.get_data(as_text=True)
    response = client.post("/engine-rest/external-task/fetchAndLock", json={"workerId": "w", "topics": []},
                           headers={"Authorization": "Basic dTpw"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def _backend_killed_between_two_reads(url: str) -> tuple[Database, object]:
    """A pooled connection whose server process is terminated while it sits in the pool."""
    db = Database(url)
    with db.read() as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True
    admin.dispose()
    return db, pid


def test_postgresql_connection_gone_while_idle_is_replaced_unnoticed(pg_database, monkeypatch):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    monkeypatch.setattr(storage.db, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle: pinged
    db, pid = _backend_killed_between_two_reads(pg_database)
    with db.read() as session:
        assert session.scalar(text("SELECT pg_backend_pid()")) != pid  # a new connection, no error
    db.dispose()


def test_postgresql_connection_gone_moments_after_use_fails_once_then_recovers(pg_database, monkeypatch):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    monkeypatch.setattr(storage.db, "IDLE_PING_SECONDS", 3600.0)  # recently used: trusted, not pinged
    db, pid = _backend_killed_between_two_reads(pg_database)
    with pytest.raises(DBAPIError) as caught, db.read() as session:
        session.scalar(text("SELECT 1"))
    assert caught.value.connection_invalidated  # the web layer answers 503 (as_unavailable)
    with db.read() as session:
        assert session.scalar(text("SELECT pg_backend_pid()")) != pid
    db.dispose()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_locked_past_busy_timeout_is_a_503_then_recovers(client, db):
    headers = token(client, "lena.lead")
    db.dispose()  # new connections get the short busy timeout below (production waits 30 s)
    for engine in {db.engine, db.write_engine}:
        event.listen(engine, "connect", lambda conn, _r: conn.execute("PRAGMA busy_timeout=200"))
    path = db.url.split("sqlite:///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        response = client.post("/api/v1/processes/simple_review/instances", headers=headers,
                               json={"data": {"reference": "C-L"}})
        assert response.status_code == 503, response.json
        assert response.headers["Retry-After"] == "5"
        assert "busy" in response.json["error"]["message"]
    finally:
        holder.rollback()
        holder.close()
    response = client.post("/api/v1/processes/simple_review/instances", headers=headers,
                           json={"data": {"reference": "C-L"}})
    assert response.status_code == 201
