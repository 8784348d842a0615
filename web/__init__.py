"""Flask application factory: pages (auth, inbox, tasks, processes, instances, public complaint
form, admin) and the REST API under /api/v1."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Request, jsonify, redirect, url_for
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

import storage.api_tokens  # noqa: F401  (registers the web tables on the shared metadata)
from engine import clock, permissions
from engine.credentials import SignInLimits, session_actor
from engine.health import readiness
from engine.runtime import Runtime
from engine.settings import current as current_settings
from engine.signing import secret_key
from storage.db import Database
from web import attachments, errors
from web.context import WebUser, actor
from web.json_body import LimitedRequest
from web.ratelimit import public_limits

csrf = CSRFProtect()


class _Sessions(SecureCookieSessionInterface):
    """No cookie session for /engine-rest (HTTP Basic on every request) and /api/v1 (bearer tokens):
    neither uses one, and clients call them hundreds of times a second (opening a signed cookie
    session costs more than the rest of the request's framing). It also keeps a browser's cookie
    from ever authenticating an API call, which is why the API needs no CSRF token."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(("/engine-rest/", "/api/v1/")):
            return self.make_null_session(app)
        return super().open_session(app, request)


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "same-origin"),
                    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))  # unless a view set its own


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The web app; `config` overrides Flask settings and may hand in DATABASE / RUNTIME / INSTANCE_DIR,
    everything else comes from engine.settings (the environment)."""
    config = dict(config or {})
    settings = current_settings()
    app = Flask(__name__)
    app.request_class = LimitedRequest  # JSON bodies parsed with a depth limit (400, never a RecursionError)
    instance_dir = Path(config.get("INSTANCE_DIR") or settings.instance_dir)
    app.config.update(
        SECRET_KEY=config.get("SECRET_KEY") or secret_key(instance_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=6 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        COMPLAINT_PROCESS=settings.complaint_process,
        TIMEZONE=settings.timezone,
        COMPLAINT_LIMIT=(5, 600.0),   # complaints per IP per window
        STATUS_LIMIT=(30, 600.0),     # complaint status look-ups (page and API together) per IP per window
        TRUSTED_PROXIES=settings.trusted_proxies,
        SIGNIN_LIMITS=SignInLimits(settings.signin_attempts, settings.signin_address_attempts,
                                   timedelta(seconds=settings.signin_window)),
    )
    app.config.update(config)
    db = config.get("DATABASE") or Database(config.get("DATABASE_URL") or settings.database_url,
                                            instance_dir=instance_dir)
    runtime = config.get("RUNTIME") or Runtime(db)
    app.extensions["pdcaflow.runtime"] = runtime
    app.extensions["pdcaflow.db"] = runtime.db
    # all shared by every process: counted in the database (engine/rate_limits.py)
    app.extensions["pdcaflow.limits"] = public_limits(app.config)
    app.extensions["pdcaflow.signin_limits"] = app.config["SIGNIN_LIMITS"]
    if app.config["TRUSTED_PROXIES"]:  # the client address (sign-in limits) from the proxies' X-Forwarded-* only then
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.session_interface = _Sessions()
    # imported here, not at the top: `pdcaflow serve` must choose prometheus-client's multiprocess
    # mode before prometheus_client is first imported (web/serving.py)
    from web import metrics, observability

    observability.init_app(app)  # first of the request hooks: every request is timed, also one CSRF refuses
    attachments.install(app)  # before CSRF: its form parsing must see the upload views' body limit
    csrf.init_app(app)
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = "Please sign in to continue."
    login.session_protection = "strong"

    @login.user_loader
    def _load(user_id: str) -> WebUser | None:
        # "generation:username": a cookie from before a logout or password change is refused here
        generation, _, username = user_id.partition(":")
        if not generation.isdigit():
            return None
        a = session_actor(runtime.db, username, int(generation))
        return WebUser(a, int(generation)) if a else None

    errors.register(app)
    _templating(app)

    @app.after_request
    def _security_headers(response: Any) -> Any:
        # one pass over the response's headers (a setdefault each scanned them all, every request)
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if "cache-control" not in present and response.mimetype == "text/html":
            headers.add("Cache-Control", "no-store")
        return response

    from web import (
        admin,
        api,
        auth,
        complaints,
        dashboard,
        engine_rest,
        inbox,
        instances,
        intake,
        modeler,
        notifications,
        processes,
        reports,
        status,
        survey,
    )

    for module in (auth, inbox, modeler, processes, instances, complaints, admin, dashboard, reports, survey,
                   notifications, status, intake):
        app.register_blueprint(module.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(engine_rest.bp)  # Camunda 7 REST subset (HTTP Basic, no cookies: no CSRF)
    csrf.exempt(engine_rest.bp)
    app.register_blueprint(metrics.bp)  # Prometheus /metrics (GET only; who may read it: web/metrics.py)

    @app.get("/")
    def index() -> Any:
        if current_user.is_authenticated:
            return redirect(url_for("inbox.inbox"))
        return redirect(url_for("auth.login"))

    @app.get("/healthz")
    @app.get("/api/v1/healthz")  # also under the API, where its OpenAPI document describes both probes
    def healthz() -> Any:  # liveness: the process answers; no database, so a DB outage restarts nothing
        return jsonify(status="ok")

    @app.get("/readyz")
    @app.get("/api/v1/readyz")
    def readyz() -> Any:  # readiness: send traffic only when the database answers and is migrated
        state = readiness(runtime.db)
        response = jsonify(status="ready" if state.ready else "unavailable", detail=state.reason)
        if not state.ready:
            response.status_code = 503
            response.headers["Retry-After"] = "5"
        return response

    return app


def _templating(app: Flask) -> None:
    zone = ZoneInfo(app.config["TIMEZONE"])

    @app.template_filter("dt")
    def _dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(zone).strftime(fmt)

    @app.template_filter("overdue")
    def _overdue(task: Any) -> bool:
        return bool(task.due_at and task.state in ("open", "claimed") and task.due_at < clock.now())

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"tz_name": app.config["TIMEZONE"]}

    # Task buttons follow the engine's rules for the signed-in user (pages that show tasks need one).
    from web.notifications import unread_for_header

    app.jinja_env.globals.update(
        unread_notifications=unread_for_header,  # the bell on every signed-in page
        may_register_complaints=lambda: permissions.may_register_complaints(actor()),
        may_claim=lambda t: permissions.may_claim(actor(), t, t.groups),
        may_unclaim=lambda t: permissions.may_unclaim(actor(), t, t.groups),
    )
