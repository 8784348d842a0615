"""The one place engine errors and HTTP errors become pages or JSON error bodies.

API requests (`/api/...`) get `{"error": {"code", "message", "details"}}`; pages get an error page
with the same status.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError
from engine.health import as_unavailable

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited",
              500: "internal_error", 503: "unavailable"}


class ApiError(Exception):
    """An error raised by a web handler itself (bad input, no token, ...)."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.code = code or HTTP_CODES.get(status, "error")


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def describe(exc: BaseException) -> tuple[int, str, str, list[dict[str, Any]]]:
    """(status, code, message, details) for any error we know how to show."""
    if isinstance(exc, EngineError):
        return exc.http_status, exc.code, exc.message, list(exc.details)
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.details
    if isinstance(exc, CSRFError):
        return 400, "csrf_failed", exc.description or "The form's security token is missing or expired.", []
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "The upload is too large."
        return status, HTTP_CODES.get(status, "error"), message, []
    return 500, "internal_error", "Something went wrong on our side.", []


def respond(exc: BaseException) -> Any:
    response = _respond(exc)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:  # a transient condition (database unavailable): tell clients and proxies when
        if isinstance(response, tuple):
            response = make_response(*response)
        response.headers["Retry-After"] = str(retry_after)
    return response


def _respond(exc: BaseException) -> Any:
    status, code, message, details = describe(exc)
    if request.path.startswith("/engine-rest"):  # Camunda's error shape (an unknown route, a 405...)
        response = jsonify(type="RestException", message=message)
        response.status_code = status
        return response
    if is_api_request():
        response = jsonify(error={"code": code, "message": message, "details": details})
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="pdcaflow"'
        return response
    return render_template("error.html", status=status, code=code, message=message, details=details), status


def register(app: Flask) -> None:
    app.register_error_handler(EngineError, respond)
    app.register_error_handler(ApiError, respond)
    app.register_error_handler(HTTPException, respond)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        unavailable = as_unavailable(exc)
        if unavailable is not None:  # transient, not a bug: one log line, no traceback
            app.logger.warning("%s %s: %s (%s)", request.method, request.path, unavailable.message,
                               type(exc).__name__)
            return respond(unavailable)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return respond(exc)
