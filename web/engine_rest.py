"""A Camunda 7 REST subset under `/engine-rest` (DESIGN §8), so workers and clients written for
Camunda 7 (e.g. PyPI's camunda-external-task-client-python3) run against PDCA Flow unchanged.

HTTP Basic auth with PDCA Flow users; Camunda's shapes: typed variables, errors as
`{"type", "message"}`, timestamps like `2026-12-02T10:00:00.000+0000`, 204 for the external-task
outcomes. Every rule lives in the engine (engine/external_tasks.py, engine/permissions.py, the
Runtime); the web side only translates. This module holds the blueprint, the auth, the error shapes and
the engine's own routes; the routes by resource are web/engine_rest_external_tasks.py,
web/engine_rest_runtime.py and web/engine_rest_deployments.py, the request shapes and query parameters web/engine_rest_schemas.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from engine import external_tasks as xt
from engine.credentials import Credential, RateLimitedError, verified_actor
from engine.errors import EngineError, NotFoundError, PermissionDeniedError
from engine.health import as_unavailable
from engine.views import Actor
from web import engine_rest_schemas as s
from web.context import database, sign_in
from web.errors import ApiError
from web.openapi import build_engine_rest_document

bp = Blueprint("engine_rest", __name__, url_prefix="/engine-rest")

ENGINE_VERSION = "7.22.0"  # the Camunda REST API level this subset follows
CREDENTIALS_TTL = 60.0  # seconds a verified user/password pair is trusted without hashing it again


# ---------------------------------------------------------------------- auth
class _CredentialCache:
    """Password hashing (scrypt) costs tens of milliseconds; a worker sends its password with every
    request. A verified pair is trusted for CREDENTIALS_TTL seconds (keyed by a keyed hash, never the
    password itself); every request still reads the user's token generation, role and groups (one
    statement, `verified_actor`), so a deactivation, a password change, `pdcaflow revoke-tokens` or a
    new role takes effect at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, Credential]] = {}

    def key(self, username: str, password: str) -> bytes:
        secret = str(current_app.config.get("SECRET_KEY") or "").encode()
        return hmac.new(secret, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def get(self, key: bytes) -> Credential | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: bytes, credential: Credential) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + CREDENTIALS_TTL, credential)


def _credentials() -> _CredentialCache:
    # one cache per app (and so per database and secret key)
    return current_app.extensions.setdefault("pdcaflow.engine_rest_credentials", _CredentialCache())


class CamundaError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _from_another_site() -> bool:
    """A browser's request made by another site's page (CSRF): a browser caches Basic credentials once
    the user typed them, so such a request would carry them. Workers and tools (and the same origin's
    pages) send no Sec-Fetch-Site or "same-origin"/"none"; an Origin of another host says the same for
    browsers without Sec-Fetch-Site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("cross-site", "same-site")
    origin = request.headers.get("Origin")
    return bool(origin) and urlsplit(origin).netloc != request.host


@bp.before_request
def _basic_auth() -> None:
    if request.endpoint == "engine_rest.openapi":
        return
    if request.method not in _SAFE_METHODS and _from_another_site():
        raise CamundaError(403, "AuthorizationException", "a request another site's page makes is refused")
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise CamundaError(401, "AuthenticationException", "HTTP Basic authentication with a PDCA Flow user is required")
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise CamundaError(401, "AuthenticationException", "malformed Basic credentials") from exc
    cache = _credentials()
    key = cache.key(username, password)
    credential = cache.get(key)
    # a cached pair: one statement says whether it still holds (else: password changed, deactivated
    # or revoked since it was verified, so check it again) and who the user is now (role, groups)
    actor = verified_actor(database(), username, credential.token_generation) if credential is not None else None
    if actor is None:
        try:
            credential = sign_in(username, password)
        except RateLimitedError as exc:
            raise CamundaError(429, "AuthenticationException", "too many failed attempts; try again later") from exc
        if credential is None:
            raise CamundaError(401, "AuthenticationException", "unknown user name or wrong password")
        cache.put(key, credential)
        actor = credential.actor
    g.api_actor = actor


def caller() -> Actor:
    return g.api_actor


# ---------------------------------------------------------------------- errors (Camunda's shape)
def _error(status: int, type_: str, message: str) -> Response:
    response = jsonify(type=type_, message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="pdcaflow"'
    return response


@bp.errorhandler(CamundaError)
def _camunda_error(exc: CamundaError) -> Response:
    return _error(exc.status, exc.type, exc.message)


@bp.errorhandler(s.BadRequest)
def _bad_request(exc: s.BadRequest) -> Response:
    return _error(400, "InvalidRequestException", str(exc))


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> Response:
    if isinstance(exc, xt.LockMismatchError):  # Camunda wraps it in a RestException with status 400
        return _error(400, "RestException", exc.message)
    if isinstance(exc, PermissionDeniedError):
        return _error(403, "AuthorizationException", exc.message)
    if isinstance(exc, NotFoundError):
        return _error(404, "RestException", exc.message)
    if exc.http_status in (400, 422):
        return _error(400, "InvalidRequestException", exc.message)
    response = _error(exc.http_status, "RestException", exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:  # the database is unavailable for now (503)
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:  # e.g. a body nested too deeply (web/json_body.py)
    return _error(exc.status, "InvalidRequestException" if exc.status == 400 else "RestException", exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _error(exc.code or 500, "RestException", exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    unavailable = as_unavailable(exc)
    if unavailable is not None:  # transient, not a bug: one log line, no traceback
        current_app.logger.warning("%s %s: %s", request.method, request.path, unavailable.message)
        return _engine_error(unavailable)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return _error(500, "ProcessEngineException", "Something went wrong on our side.")


_SCHEMAS: dict[type, Any] = {}  # one instance per request schema: building one costs more than loading


def body(schema: type) -> dict[str, Any]:
    instance = _SCHEMAS.get(schema)
    if instance is None:
        instance = _SCHEMAS.setdefault(schema, schema())
    raw = request.get_data(cache=True)
    payload = request.get_json(silent=True) if raw else {}
    if raw and payload is None:
        raise s.BadRequest("the request body is not valid JSON")
    return s.load(instance, payload)


def no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------------- engine, version, the document
@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(build_engine_rest_document())



@bp.get("/engine")
def engines() -> Any:
    return jsonify([{"name": "default"}])


@bp.get("/version")
def version() -> Any:
    return jsonify(version=ENGINE_VERSION)


# the routes, by resource; importing them adds them to `bp`
from web import engine_rest_deployments, engine_rest_external_tasks, engine_rest_runtime  # noqa: E402,F401  isort: skip
