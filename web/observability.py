"""Per request: an id, the time it took, the latency metric (web/metrics.py) and, with
PDCAFLOW_LOG_FORMAT=json, one log line (engine/logs.py).

The id is the caller's `X-Request-ID` when it is a short token (a proxy's id carries through), else
a new one; it is sent back in `X-Request-ID` and bound to every log line written while serving it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, g, request

from engine import logs
from engine.settings import current as current_settings
from web.metrics import observe_request

log = logging.getLogger("pdcaflow.request")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def init_app(app: Flask) -> None:
    json_lines = current_settings().log_format == "json"

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        g.log_token = logs.bind(request_id=g.request_id, method=request.method, path=request.path)

    @app.after_request
    def _finish(response: Any) -> Any:
        started = g.pop("request_started", None)
        if started is None:  # a response made before our before_request ran (another hook answered)
            return response
        seconds = time.perf_counter() - started
        observe_request(request.url_rule.endpoint if request.url_rule else None, request.method,
                        response.status_code, seconds)
        response.headers.setdefault("X-Request-ID", g.request_id)
        if json_lines:
            log.info("%s %s %s", request.method, request.path, response.status_code,
                     extra={"fields": {"status": response.status_code, "duration_ms": round(seconds * 1000, 2)}})
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            logs.unbind(token)
