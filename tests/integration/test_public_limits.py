"""The public complaint and status limits per client address (web/ratelimit.py over the database
limiter, engine/rate_limits.py): shared by every app on one database (gunicorn workers, several
`pdcaflow serve`), atomic under parallel requests over real HTTP, 429 with Retry-After."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from storage.db import Database
from tests.conftest import serving
from tests.integration.conftest import csrf
from tests.integration.test_complaint_status import GOOD
from web import create_app


def _limit(app, name: str, attempts: int) -> None:
    limits = app.extensions["pdcaflow.limits"]
    limits[name] = replace(limits[name], attempts=attempts)


def _other_app(db, tmp_path, **limits: tuple[int, float]):
    other_db = Database(db.url)
    config = {"DATABASE": other_db, "SECRET_KEY": "test-secret", "TESTING": True,
              "INSTANCE_DIR": str(tmp_path / "other"), **{f"{k.upper()}_LIMIT": v for k, v in limits.items()}}
    return create_app(config), other_db


def test_complaints_are_counted_together_by_two_apps_on_one_database(app, db, tmp_path, complaint_process):
    """Form and API, on two app instances (two workers or machines) with their own connections."""
    _limit(app, "complaint", 3)
    other, other_db = _other_app(db, tmp_path, complaint=(3, 600.0))
    try:
        first, second = app.test_client(), other.test_client()
        assert first.post("/api/v1/complaints", json=GOOD).status_code == 201
        assert second.post("/api/v1/complaints", json=GOOD).status_code == 201
        page = second.post("/complain", data=dict(GOOD, csrf_token=csrf(second, "/complain")))
        assert page.status_code == 303
        refused = first.post("/api/v1/complaints", json=GOOD)
        assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
        assert 590 <= int(refused.headers["Retry-After"]) <= 600
        page = second.post("/complain", data=dict(GOOD, csrf_token=csrf(second, "/complain")))
        assert page.status_code == 429 and "Retry-After" in page.headers
        # another client address still files
        assert second.post("/api/v1/complaints", json=GOOD,
                           environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 201
    finally:
        other_db.dispose()
    assert len(app.extensions["pdcaflow.runtime"].instances()) == 4  # the refused ones filed nothing


def test_status_lookups_are_counted_together_by_two_apps_on_one_database(app, db, tmp_path, complaint_process):
    reference = app.test_client().post("/api/v1/complaints", json=GOOD).get_json()["reference"]
    _limit(app, "status", 4)
    other, other_db = _other_app(db, tmp_path, status=(4, 600.0))
    try:
        clients = [app.test_client(), other.test_client()]
        statuses = [clients[i % 2].get(f"/api/v1/complaints/{reference}",
                                       query_string={"email": GOOD["customer_email"]}).status_code for i in range(6)]
        assert statuses == [200] * 4 + [429] * 2
    finally:
        other_db.dispose()


def test_parallel_status_lookups_over_http_are_bounded(app, complaint_process):
    """30 look-ups at once from one address through a threaded server: exactly the allowed 5 answer."""
    reference = app.test_client().post("/api/v1/complaints", json=GOOD).get_json()["reference"]
    _limit(app, "status", 5)

    def lookup(base: str) -> tuple[int, str | None]:
        url = f"{base}/api/v1/complaints/{reference}?email={GOOD['customer_email']}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.status, None
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
            return exc.code, f"{body['error']['code']} {exc.headers.get('Retry-After')}"

    with serving(app) as base, ThreadPoolExecutor(max_workers=15) as pool:
        answers = list(pool.map(lambda _: lookup(base), range(30)))
    assert sorted(status for status, _ in answers) == [200] * 5 + [429] * 25
    assert all(note.startswith("rate_limited ") and int(note.split()[1]) > 590
               for status, note in answers if status == 429)


def test_serve_workers_share_the_status_limit(tmp_path):
    """`pdcaflow serve` with two gunicorn workers: the 30 look-ups one worker answers count for the
    other too. A request held half-sent keeps one (sync) worker reading it while the other answers
    the 30; finished, it is the 31st and refused (a per-process limit would let it through)."""
    import socket
    import subprocess
    import sys

    from tests.integration.test_serving import ROOT, _env, _free_port, _stop, _wait_up

    env = _env(tmp_path, None)
    subprocess.run([sys.executable, "-m", "web.cli", "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    lookup = "/api/v1/complaints/C-2099-000001?email=ann@example.com"
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--workers", "2", "--threads", "1",
                             "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def status() -> tuple[int, str | None]:
        try:
            with urllib.request.urlopen(base + lookup, timeout=30) as response:
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Retry-After")

    try:
        _wait_up(f"{base}/healthz", proc)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as held:
            held.sendall(f"GET {lookup} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            answers = [status() for _ in range(30)]
            held.sendall(b"Connection: close\r\n\r\n")
            held_status = int(held.makefile("rb").readline().split()[1])
        assert {code for code, _ in answers} == {404}  # an unknown reference: looked up, not limited
        assert held_status == 429
        code, retry_after = status()
        assert code == 429 and 590 <= int(retry_after) <= 600
    finally:
        _stop(proc)
