"""Accounts: create/update users, check passwords, and turn a user into an engine Actor."""

from __future__ import annotations

import re

from werkzeug.security import check_password_hash, generate_password_hash

from engine import clock
from engine.errors import EngineError
from engine.views import ROLES, Actor
from storage.db import Database
from storage.users import get_user, upsert_user

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
GROUP = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MIN_PASSWORD = 8


def save_user(db: Database, username: str, role: str, *, password: str | None = None, email: str | None = None,
              groups: list[str] | None = None) -> bool:
    """Add or update a user; returns True when created.

    The role is also a group of the same name. `groups=None` keeps an existing user's other groups.
    """
    if not USERNAME.match(username):
        raise EngineError("user names are 2-80 letters, digits or . _ @ -")
    if role not in ROLES:
        raise EngineError(f"role must be one of {', '.join(ROLES)}")
    bad = [g for g in groups or [] if not GROUP.match(g)]
    if bad:
        raise EngineError(f"invalid group name: {bad[0]}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise EngineError(f"passwords need at least {MIN_PASSWORD} characters")
    password_hash = generate_password_hash(password, method="scrypt") if password is not None else None
    with db.write() as session:
        if groups is None:
            existing = get_user(session, username)
            groups = [g.name for g in existing.groups if g.name not in ROLES] if existing else []
        _, created = upsert_user(session, username, role=role, password_hash=password_hash, email=email,
                                 groups=sorted(set(groups) | {role}), now=clock.now())
    return created


def authenticate(db: Database, username: str, password: str) -> Actor | None:
    with db.read() as session:
        user = get_user(session, username)
        if user is None or not user.active or not check_password_hash(user.password_hash, password):
            return None
        return Actor(user.username, frozenset(g.name for g in user.groups), user.role)


def actor_for(db: Database, username: str) -> Actor | None:
    with db.read() as session:
        user = get_user(session, username)
        if user is None or not user.active:
            return None
        return Actor(user.username, frozenset(g.name for g in user.groups), user.role)
