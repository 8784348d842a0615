"""Accounts: create, change, deactivate and reactivate users, check passwords for the CLI, and turn a
user into an engine Actor. Ending sessions and tokens is engine/credentials.py's job; these
functions call it (through storage) whenever a password changes or an account is deactivated."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from engine import clock
from engine.errors import ConflictError, EngineError, NotFoundError
from engine.forms import invalid
from engine.views import ROLES, Actor
from storage.db import Database
from storage.users import all_users, bump_generations, get_user, upsert_user

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
GROUP = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
EMAIL = re.compile(r"^[^@\s]{1,200}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def problems(*, username: str | None = None, role: str | None = None, groups: list[str] | None = None,
             email: str | None = None, password: str | None = None) -> list[dict[str, str]]:
    """What is wrong with these account fields, one entry per field ({field, message}); empty when fine."""
    found = []
    if username is not None and not USERNAME.match(username):
        found.append({"field": "username", "message": "user names are 2-80 letters, digits or . _ @ -"})
    if role is not None and role not in ROLES:
        found.append({"field": "role", "message": f"role must be one of {', '.join(ROLES)}"})
    bad = [g for g in groups or [] if not GROUP.match(g)]
    if bad:
        found.append({"field": "groups", "message": f"invalid group name: {bad[0]} (letters, digits, . _ -)"})
    if email and (len(email) > 255 or not EMAIL.match(email)):
        found.append({"field": "email", "message": "not an e-mail address"})
    if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        found.append({"field": "password",
                      "message": f"passwords need at least {MIN_PASSWORD} characters (at most {MAX_PASSWORD})"})
    return found


def _hash(password: str | None) -> str | None:
    return generate_password_hash(password, method="scrypt") if password is not None else None


def save_user(db: Database, username: str, role: str, *, password: str | None = None, email: str | None = None,
              groups: list[str] | None = None) -> bool:
    """Add or update a user (`pdcaflow create-user`); returns True when created.

    The role is also a group of the same name. `groups=None` keeps an existing user's other groups.
    A new password of an existing user ends its sessions and API tokens."""
    found = problems(username=username, role=role, groups=groups, password=password)
    if found:
        raise EngineError(found[0]["message"])
    password_hash = _hash(password)
    with db.write() as session:
        existing = get_user(session, username)
        if groups is None:
            groups = [g.name for g in existing.groups if g.name not in ROLES] if existing else []
        _, created = upsert_user(session, username, role=role, password_hash=password_hash, email=email,
                                 groups=sorted(set(groups) | {role}), now=clock.now())
        if not created and password_hash is not None:
            session.flush()
            bump_generations(session, username, tokens=True, now=clock.now())
    return created


def create_user(db: Database, username: str, role: str, password: str, *, email: str | None = None,
                groups: list[str] | None = None) -> dict[str, Any]:
    """A new account (admins: Users page, `POST /api/v1/users`); 422 naming bad fields, 409 if the name is taken."""
    found = problems(username=username, role=role, groups=groups, email=email, password=password)
    if found:
        raise invalid(found)
    password_hash = _hash(password)
    with db.write() as session:
        if get_user(session, username) is not None:
            raise ConflictError(f"a user named {username} already exists",
                                [{"field": "username", "message": "this name is taken"}])
        user, _ = upsert_user(session, username, role=role, password_hash=password_hash, email=email or None,
                              groups=sorted(set(groups or []) | {role}), now=clock.now())
        return _info(user)


def update_user(db: Database, username: str, by: Actor, *, role: str | None = None, groups: list[str] | None = None,
                email: str | None = None, active: bool | None = None, password: str | None = None) -> dict[str, Any]:
    """Change an account; None leaves a field as it is, `email=""` clears it. A new password or a
    deactivation ends the user's sessions and API tokens. Admins cannot lock themselves out."""
    found = problems(role=role, groups=groups, email=email, password=password)
    if username == by.username and active is False:
        found.append({"field": "active", "message": "you cannot deactivate your own account"})
    if username == by.username and role is not None and role != "admin" and by.role == "admin":
        found.append({"field": "role", "message": "you cannot take the admin role from yourself"})
    if found:
        raise invalid(found)
    password_hash = _hash(password)
    now = clock.now()
    with db.write() as session:
        user = get_user(session, username)
        if user is None:
            raise NotFoundError(f"no user {username}")
        new_role = role or user.role
        kept = groups if groups is not None else [g.name for g in user.groups if g.name not in ROLES]
        upsert_user(session, username, role=new_role, password_hash=password_hash, email=None,
                    groups=sorted(set(kept) | {new_role}), now=now)
        if email is not None:
            user.email = email or None
        ended = password_hash is not None or (active is False and user.active)
        if active is not None:
            user.active = active
        session.flush()
        if ended:
            bump_generations(session, username, tokens=True, now=now)
        return _info(user)


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        return [_info(u) for u in all_users(session)]


def user_info(db: Database, username: str) -> dict[str, Any]:
    with db.read() as session:
        user = get_user(session, username)
        if user is None:
            raise NotFoundError(f"no user {username}")
        return _info(user)


def _info(user: Any) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "email": user.email, "active": bool(user.active),
            "groups": sorted(g.name for g in user.groups if g.name not in ROLES), "created_at": user.created_at}


def authenticate(db: Database, username: str, password: str) -> Actor | None:
    """Check a password without attempt limits: for the CLI and tests. Requests sign in through
    engine.credentials.sign_in."""
    with db.read() as session:
        user = get_user(session, username)
        if user is None or not user.active or not check_password_hash(user.password_hash, password):
            return None
        return Actor(user.username, frozenset(g.name for g in user.groups), user.role)
