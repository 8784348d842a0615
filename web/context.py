"""Per-request helpers shared by the blueprints: the runtime, the signed-in actor, role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g
from flask_login import UserMixin, current_user

from engine import credentials
from engine.credentials import Credential
from engine.database import Database
from engine.runtime import Runtime
from engine.views import Actor

F = TypeVar("F", bound=Callable[..., Any])


class WebUser(UserMixin):
    """Flask-Login's view of an engine Actor; its id carries the session generation it was signed in
    under (engine/credentials.py), so ending sessions server-side needs no session table."""

    def __init__(self, actor: Actor, session_generation: int) -> None:
        self.actor = actor
        self.session_generation = session_generation

    def get_id(self) -> str:
        return f"{self.session_generation}:{self.actor.username}"

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def is_lead(self) -> bool:
        return self.actor.is_lead


def runtime() -> Runtime:
    return current_app.extensions["pdcaflow.runtime"]


def database() -> Database:
    return current_app.extensions["pdcaflow.db"]


def actor() -> Actor:
    """The acting user: a bearer-token actor (API) or the signed-in session user (pages)."""
    api_actor = g.get("api_actor")
    if api_actor is not None:
        return api_actor
    if current_user.is_authenticated:
        return current_user.actor
    abort(401)


def lead_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not actor().is_lead:
            abort(403, "Only quality leads and admins may do this.")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if actor().role != "admin":
            abort(403, "Only admins may do this.")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def client_ip() -> str:
    """The client's address: the socket peer, or what the trusted proxies said (ProxyFix, PDCAFLOW_TRUSTED_PROXIES)."""
    from flask import request

    return request.remote_addr or "unknown"


def sign_in(username: str, password: str) -> Credential | None:
    """Check a user name and password under the shared attempt limits (RateLimitedError: 429)."""
    return credentials.sign_in(database(), client_ip(), username, password,
                               current_app.extensions["pdcaflow.signin_limits"])
