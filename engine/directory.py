"""Accounts seen from the web layer: user/group listings, API bearer tokens and complaint
references. Tokens are random 256-bit strings; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from engine import clock
from engine.accounts import user_info
from engine.credentials import Credential, identity_actor
from engine.errors import NotFoundError
from engine.health import as_unavailable
from engine.views import Actor
from storage import queries
from storage.db import Database

log = logging.getLogger("pdcaflow.directory")

TOKEN_TTL = timedelta(days=30)
# A token's last use is recorded at most this often, so a bearer-token GET does not write (and keeps
# working read-only, e.g. on a full disk).
LAST_USE_EVERY = timedelta(minutes=5)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(db: Database, credential: Credential, ttl: timedelta = TOKEN_TTL, label: str | None = None
                ) -> tuple[str, datetime]:
    """A new bearer token for a verified sign-in, bound to the token generation it was verified under."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + ttl
    username = credential.actor.username
    with db.write() as session:
        if not queries.add_token(session, username, _hash(token), now, expires, label,
                                 generation=credential.token_generation):
            raise LookupError(f"user {username} is not active")
    return token, expires


def actor_for_token(db: Database, token: str) -> Actor | None:
    """The actor of a valid bearer token, its role and groups as they are now: one statement per
    request. Reads only, except that the token's last use is written when the stored one is older
    than LAST_USE_EVERY, and that write may fail (a full disk) without refusing the request."""
    if not token or len(token) > 200:
        return None
    now = clock.now()
    with db.single_read() as conn:
        rows = queries.token_identity(conn, _hash(token), now)
    if not rows:
        return None
    last_used = rows[0].last_used_at
    if last_used is None or now - last_used >= LAST_USE_EVERY:
        _record_use(db, rows[0].token_id, now)
    return identity_actor(rows)


def _record_use(db: Database, token_id: int, now: datetime) -> None:
    try:
        with db.write() as session:
            queries.touch_token(session, token_id, now)
    except Exception as exc:  # noqa: BLE001 - only an unavailable database is tolerated, re-raised otherwise
        if as_unavailable(exc) is None:
            raise
        log.warning("could not record the last use of API token %s: %s", token_id, exc)


def revoke_token(db: Database, token: str) -> bool:
    with db.write() as session:
        return queries.revoke_token(session, _hash(token), clock.now())


def user_tokens(db: Database, username: str) -> list[dict[str, Any]]:
    """A user's API tokens (never their values), newest first."""
    user_info(db, username)  # 404 for an unknown user
    with db.read() as session:
        return queries.user_tokens(session, username)


def revoke_token_id(db: Database, token_id: str) -> str:
    """Revoke a token by its id (admins); returns its owner. 404 for an unknown id."""
    if not token_id.isdigit() or len(token_id) > 18:
        raise NotFoundError(f"no API token {token_id}")
    with db.write() as session:
        owner = queries.revoke_token_by_id(session, int(token_id), clock.now())
    if owner is None:
        raise NotFoundError(f"no API token {token_id}")
    return owner


def users(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        return queries.list_users(session)


def groups(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        return queries.list_groups(session)


def group_names(db: Database) -> list[str]:
    """Every group's name (without members: the inbox's group filter)."""
    with db.read() as session:
        return queries.group_names(session)


def new_complaint_reference(db: Database) -> str:
    now = clock.now()
    with db.write() as session:
        return queries.new_reference(session, now.year, now)
