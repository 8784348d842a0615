"""The production servers, run as real subprocesses and spoken to over real HTTP: `pdcaflow run`
(waitress, no development-server warning) and `pdcaflow serve` (gunicorn workers), and the
/healthz and /readyz probes load balancers use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from storage.db import Database
from storage.migrate import upgrade
from tests.conftest import skip_or_fail
from web import create_app

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, db_url: str | None) -> dict[str, str]:
    env = dict(os.environ, PDCAFLOW_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    if db_url:
        env["DATABASE_URL"] = db_url
    return env


def _get(url: str) -> tuple[int, dict, dict]:
    """(status, headers, JSON body or {} for a page)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            status, headers, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, dict(e.headers), e.read()
    return status, headers, json.loads(raw) if headers.get("Content-Type", "").startswith("application/json") else {}


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            _get(url)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds}s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[str, str]:
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _backend_url(backend: str, tmp_path: Path, pg_database: str | None) -> str | None:
    if backend == "sqlite":
        return None  # the default: instance/pdcaflow.sqlite3 under PDCAFLOW_INSTANCE_DIR
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    return pg_database


def test_run_serves_with_waitress_without_development_warning(tmp_path):
    env = _env(tmp_path, None)
    subprocess.run([sys.executable, "-m", "web.cli", "init-db"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "run", "--port", str(port), "--no-scheduler"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        status, _, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert (status, body["status"]) == (200, "ready")
        status, headers, _ = _get(f"http://127.0.0.1:{port}/login")
        assert status == 200 and headers.get("Server") == "pdcaflow"  # waitress (ident), not Werkzeug
    finally:
        out, err = _stop(proc)
    assert f"PDCA Flow on http://127.0.0.1:{port}/" in out and "scheduler off" in out
    assert "development server" not in (out + err)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_runs_gunicorn_workers_answering_in_parallel(backend, tmp_path, pg_database):
    url = _backend_url(backend, tmp_path, pg_database)
    env = _env(tmp_path, url)
    subprocess.run([sys.executable, "-m", "web.cli", "init-db"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--workers", "2", "--bind",
                             f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        status, _, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert (status, body["status"]) == (200, "ready"), body
        # two worker processes besides the arbiter
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2
        status, _, body = _get(f"http://127.0.0.1:{port}/api/v1/tasks")
        assert status == 401 and body["error"]["code"] == "unauthorized"
    finally:
        out, err = _stop(proc, signal.SIGTERM)
    assert f"PDCA Flow on http://127.0.0.1:{port}/" in out and "2 workers" in out
    assert proc.returncode == 0, err


def test_serve_refuses_a_bad_bind(tmp_path):
    result = subprocess.run([sys.executable, "-m", "web.cli", "serve", "--bind", "localhost"], cwd=tmp_path,
                            env=_env(tmp_path, None), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "expected HOST:PORT" in result.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_readyz_ready_on_a_migrated_database(backend, tmp_path, pg_database):
    url = _backend_url(backend, tmp_path, pg_database) or f"sqlite:///{tmp_path / 'ready.sqlite3'}"
    upgrade(url)
    db = Database(url)
    try:
        client = create_app({"DATABASE": db, "SECRET_KEY": "t", "INSTANCE_DIR": str(tmp_path)}).test_client()
        response = client.get("/readyz")
        assert response.status_code == 200 and response.json["status"] == "ready"
        assert client.get("/healthz").json == {"status": "ok"}
    finally:
        db.dispose()


def test_readyz_503_when_schema_missing_or_behind(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    client = create_app({"DATABASE": db, "SECRET_KEY": "t", "INSTANCE_DIR": str(tmp_path)}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "pdcaflow init-db" in response.json["detail"]
    upgrade(db.url, "0001")  # an old schema: the code expects a newer migration
    response = client.get("/readyz")
    assert response.status_code == 503 and "run `pdcaflow init-db`" in response.json["detail"]
    assert client.get("/healthz").status_code == 200  # liveness does not depend on the database


def test_readyz_503_when_postgresql_is_unreachable(tmp_path):
    port = _free_port()  # nothing listens there
    db = Database(f"postgresql+psycopg://u:secret@127.0.0.1:{port}/none?connect_timeout=2")
    client = create_app({"DATABASE": db, "SECRET_KEY": "t", "INSTANCE_DIR": str(tmp_path)}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["detail"].startswith("database unreachable") and "secret" not in response.json["detail"]
    assert client.get("/healthz").status_code == 200


def test_openapi_lists_the_probes(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["paths"]["/readyz"]["get"]["security"] == []
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert client.get("/api/v1/healthz").json == client.get("/healthz").json == {"status": "ok"}
