"""`pdcaflow serve` keeps an idle connection open longer than gunicorn's 2 s default. With 2 s the
scale-out load test saw connection resets: a client reusing its connection just as the server
closed it for being idle (the request never reaches the app; client libraries do not resend it)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_serving import _free_port, _stop, _wait_up

ROOT = Path(__file__).resolve().parents[2]


def test_serve_keeps_an_idle_connection_past_gunicorns_default(tmp_path):
    env = dict(os.environ, PDCAFLOW_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection", "").lower() != "close"
        time.sleep(3.5)  # idle past gunicorn's default keep-alive (2 s), well within ours (15 s)
        conn.request("GET", "/healthz")  # the same connection: raises if the server closed it
        second = conn.getresponse()
        assert second.status == 200 and second.read()
        conn.close()
    finally:
        _stop(proc, signal.SIGTERM)
