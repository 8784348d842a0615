"""User and group rows: the queries the account service needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from storage.api_tokens import ApiToken
from storage.models import Group, User


def get_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).options(selectinload(User.groups)).where(User.username == username)).first()


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).options(selectinload(User.groups)).order_by(User.username)))


def ensure_groups(session: Session, names: list[str]) -> list[Group]:
    existing = {g.name: g for g in session.scalars(select(Group).where(Group.name.in_(names)))}
    for name in names:
        if name not in existing:
            existing[name] = Group(name=name)
            session.add(existing[name])
    return [existing[n] for n in names]


def upsert_user(session: Session, username: str, *, role: str, password_hash: str | None, email: str | None,
                groups: list[str], now: datetime) -> tuple[User, bool]:
    """Create the user or update it in place; returns (user, created)."""
    user = get_user(session, username)
    created = user is None
    if user is None:
        if password_hash is None:
            raise ValueError("a new user needs a password")
        user = User(username=username, role=role, password_hash=password_hash, email=email, created_at=now,
                    active=True)
        session.add(user)
    user.role = role
    if password_hash is not None:
        user.password_hash = password_hash
    if email is not None:
        user.email = email
    user.groups = ensure_groups(session, sorted(set(groups)))
    return user, created


def bump_generations(session: Session, username: str, *, tokens: bool, now: datetime) -> int:
    """End the user's sessions (and with `tokens` every API token): bump the generations they carry and
    mark the tokens revoked. Returns how many tokens were revoked; -1 when there is no such user."""
    values = {"session_generation": User.session_generation + 1}
    if tokens:
        values["token_generation"] = User.token_generation + 1
    user_id = session.scalar(update(User).where(User.username == username).values(**values).returning(User.id))
    if user_id is None:
        return -1
    if not tokens:
        return 0
    result = session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now))
    return result.rowcount or 0
