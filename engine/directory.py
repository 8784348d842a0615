"""Accounts seen from the web layer: user/group listings, API bearer tokens and complaint
references. Tokens are random 256-bit strings; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from engine import clock
from engine.accounts import actor_for
from engine.views import Actor
from storage import queries
from storage.db import Database

TOKEN_TTL = timedelta(days=30)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(db: Database, actor: Actor, ttl: timedelta = TOKEN_TTL, label: str | None = None
                ) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + ttl
    with db.write() as session:
        if not queries.add_token(session, actor.username, _hash(token), now, expires, label):
            raise LookupError(f"user {actor.username} is not active")
    return token, expires


def actor_for_token(db: Database, token: str) -> Actor | None:
    if not token or len(token) > 200:
        return None
    with db.write() as session:
        username = queries.token_owner(session, _hash(token), clock.now())
    return actor_for(db, username) if username else None


def revoke_token(db: Database, token: str) -> bool:
    with db.write() as session:
        return queries.revoke_token(session, _hash(token), clock.now())


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
