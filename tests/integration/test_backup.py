"""`pdcaflow backup` / `pdcaflow restore` on the SQLite default, run as real commands: a backup taken
while another connection writes, restored over later changes, serves a working app over HTTP;
bad input and PostgreSQL are refused with a clear message."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from engine.accounts import save_user
from engine.runtime import Actor, Runtime
from storage.db import Database
from tests.conftest import FIXTURES, serving, skip_or_fail
from tests.integration.test_cli import pdcaflow
from web import create_app

PASSWORD = "correct-horse-9"


def _call(base: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_backup_while_writing_then_restore_over_later_changes(tmp_path):
    assert pdcaflow(tmp_path, "init-db").returncode == 0
    db_file = tmp_path / "instance" / "pdcaflow.sqlite3"
    db = Database(f"sqlite:///{db_file}")
    runtime = Runtime(db)
    save_user(db, "rita.reviewer", "employee", password=PASSWORD, email="rita@example.com", groups=["reviewers"])
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    kept = runtime.start("simple_review", {"reference": "KEPT-1"}, Actor.system("test"))

    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:  # the app keeps working during the backup
        while not stop.is_set():
            written.append(runtime.start("simple_review", {"reference": f"W-{len(written)}"}, Actor.system("test")).id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = pdcaflow(tmp_path, "backup", str(tmp_path / "backup.sqlite3"))
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backup written: {tmp_path / 'backup.sqlite3'}")
    assert written, "the writer did not run alongside the backup"

    # later changes, which the restore must undo
    lost = runtime.start("simple_review", {"reference": "AFTER-BACKUP"}, Actor.system("test"))
    save_user(db, "rita.reviewer", "employee", password="another-password-1", email="rita@example.com",
              groups=["reviewers"])
    db.dispose()

    refused = pdcaflow(tmp_path, "backup", str(tmp_path / "backup.sqlite3"))
    assert refused.returncode == 1 and "exists" in refused.stderr  # a backup never overwrites

    restored = pdcaflow(tmp_path, "restore", str(tmp_path / "backup.sqlite3"))
    assert restored.returncode == 0, restored.stderr
    assert "database ready" in restored.stdout

    db = Database(f"sqlite:///{db_file}")
    try:
        app = create_app({"DATABASE": db, "SECRET_KEY": "test-secret", "INSTANCE_DIR": str(tmp_path / "instance")})
        with serving(app) as base:
            _, token = _call(base, "/api/v1/auth/token", {"username": "rita.reviewer", "password": PASSWORD})
            auth = {"Authorization": f"Bearer {token['token']}"}
            status, instance = _call(base, f"/api/v1/instances/{kept.id}", headers=auth)
            assert status == 200 and instance["data"]["reference"] == "KEPT-1"
            try:
                _call(base, f"/api/v1/instances/{lost.id}", headers=auth)
                raise AssertionError("an instance started after the backup survived the restore")
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
            # the restored app works: claim and complete the kept case's task over HTTP
            _, tasks = _call(base, "/api/v1/tasks", headers=auth)
            task = next(t for t in tasks if t["instance_id"] == kept.id)
            assert _call(base, f"/api/v1/tasks/{task['id']}/claim", {}, auth)[0] == 200
            status, done = _call(base, f"/api/v1/tasks/{task['id']}/complete",
                                 {"data": {"amount": 3, "urgent": False, "note": "after restore"}}, auth)
            assert status == 200
    finally:
        db.dispose()


def test_restore_refuses_what_is_not_a_pdcaflow_database(tmp_path):
    assert pdcaflow(tmp_path, "init-db").returncode == 0
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    result = pdcaflow(tmp_path, "restore", str(junk))
    assert result.returncode == 1
    assert "is not a PDCA Flow database" in result.stderr and "Traceback" not in result.stderr
    assert pdcaflow(tmp_path, "restore", str(tmp_path / "missing.sqlite3")).returncode == 2  # click: no such file


def test_backup_and_restore_refuse_postgresql_and_point_at_pg_dump(tmp_path, pg_database):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    backup = pdcaflow(tmp_path, "backup", str(tmp_path / "b.sqlite3"), db_url=pg_database)
    assert backup.returncode == 1 and "pg_dump" in backup.stderr and "Traceback" not in backup.stderr
    (tmp_path / "b.sqlite3").write_bytes(b"")
    restore = pdcaflow(tmp_path, "restore", str(tmp_path / "b.sqlite3"), db_url=pg_database)
    assert restore.returncode == 1 and "pg_restore" in restore.stderr
    assert not (tmp_path / "b.sqlite3").read_bytes()
