"""Production WSGI servers for the `pdcaflow run` and `pdcaflow serve` commands.

`run` is the one-machine server: waitress (pure Python, threads, no development-server warning)
in the same process as the embedded scheduler. `serve` is the production front: gunicorn with
N pre-forked workers, each building its own app (a database engine must not cross a fork); the
scheduler then runs as separate `pdcaflow scheduler` processes.
"""

from __future__ import annotations

from collections.abc import Callable
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
