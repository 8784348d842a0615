"""Production WSGI servers for the `pdcaflow run` and `pdcaflow serve` commands.

`run` is the one-machine server: waitress (pure Python, threads, no development-server warning)
in the same process as the embedded scheduler. `serve` is the production front: gunicorn with
N pre-forked workers, each building its own app (a database engine must not cross a fork); the
scheduler then runs as separate `pdcaflow scheduler` processes. The workers keep their request
metrics in one shared directory (`shared_metrics_dir`), so /metrics answers for all of them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

RUN_THREADS = 8  # waitress request threads of `pdcaflow run` (Flask's server used one per request)
# `pdcaflow serve` defaults (also what `pdcaflow bench http` measures)
DEFAULT_WORKERS, DEFAULT_THREADS, DEFAULT_TIMEOUT = 2, 4, 60
# Seconds an idle keep-alive connection stays open. gunicorn's 2 s made the scale-out load test see
# connection resets: a client reusing a connection just as the server closed it for being idle
# (the request never reaches the app, and an HTTP client library does not resend it). Behind a
# proxy that keeps upstream connections, set this above the proxy's idle timeout.
DEFAULT_KEEPALIVE = 15


def serve_waitress(app: Flask, host: str, port: int) -> None:
    """Serve `app` until interrupted (Ctrl-C ends it; the caller shuts down what it started)."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=RUN_THREADS, ident="pdcaflow")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@contextmanager
def shared_metrics_dir(configured: Path | None) -> Iterator[Path]:
    """The directory where gunicorn's workers keep their request metrics, so a scrape that reaches
    one worker reports all of them (prometheus-client's multiprocess mode, web/metrics.py).

    PROMETHEUS_MULTIPROC_DIR if set (emptied first: files of an earlier run would count again), else
    a temporary directory removed afterwards. Must run before prometheus_client is imported."""
    if "prometheus_client" in sys.modules:  # it picks its mode once, on import
        raise RuntimeError("prometheus_client was imported before the metrics directory was set up")
    path = configured or Path(tempfile.mkdtemp(prefix="pdcaflow-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    try:
        yield path
    finally:
        if configured is None:
            shutil.rmtree(path, ignore_errors=True)


def serve_gunicorn(app_factory: Callable[[], Flask], bind: str, workers: int, threads: int,
                   timeout: int, keepalive: int = DEFAULT_KEEPALIVE) -> None:
    """Run gunicorn in this process with `workers` forked workers of `threads` threads each."""
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):  # type: ignore[misc]  (gunicorn has no type hints)
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": bind, "workers": workers, "threads": threads, "timeout": timeout, "keepalive": keepalive,
                # gthread: a worker serves `threads` requests at once (the API waits on the database)
                "worker_class": "gthread" if threads > 1 else "sync",
                "accesslog": None, "errorlog": "-", "loglevel": "warning",
                "proc_name": "pdcaflow",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app_factory()  # in each worker after the fork: its own database engine

    _Gunicorn().run()
