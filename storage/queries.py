"""Read and small write queries the web layer needs (users, tokens, complaint references).

All statements are built with SQLAlchemy expressions; nothing here formats SQL from strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage.api_tokens import ApiToken, ComplaintReference
from storage.models import Group, User


def list_users(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(User).options(selectinload(User.groups)).order_by(User.username)).all()
    return [{"username": u.username, "role": u.role, "email": u.email, "active": u.active,
             "groups": sorted(g.name for g in u.groups)} for u in rows]


def list_groups(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Group).options(selectinload(Group.members)).order_by(Group.name)).all()
    return [{"name": g.name, "members": sorted(m.username for m in g.members)} for g in rows]


def add_token(session: Session, username: str, token_hash: str, created_at: datetime, expires_at: datetime,
              label: str | None = None) -> bool:
    user_id = session.scalar(select(User.id).where(User.username == username, User.active.is_(True)))
    if user_id is None:
        return False
    session.add(ApiToken(token_hash=token_hash, user_id=user_id, label=label, created_at=created_at,
                         expires_at=expires_at))
    return True


def token_owner(session: Session, token_hash: str, now: datetime) -> str | None:
    """The user name of a valid (unexpired, unrevoked, active user) token, recording its use."""
    row = session.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).where(
        ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None), User.active.is_(True))).first()
    if row is None:
        return None
    token, username = row
    if token.expires_at <= now:
        return None
    token.last_used_at = now
    return username


def revoke_token(session: Session, token_hash: str, now: datetime) -> bool:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True


def new_reference(session: Session, year: int, now: datetime) -> str:
    row = ComplaintReference(created_at=now)
    session.add(row)
    session.flush()
    row.reference = f"C-{year}-{row.id:06d}"
    return row.reference
