"""Model drafts: the BPMN a quality lead saved in the web modeler but has not deployed, one per
user and process key (a new diagram's key is the process id it carries), and their SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ModelDraft(Base):
    __tablename__ = "model_draft"
    __table_args__ = (UniqueConstraint("username", "key", name="uq_model_draft_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(255))
    base_version: Mapped[int | None]  # the deployed version the draft was opened from
    xml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


_MD = ModelDraft.__table__


def get(conn: Connection, username: str, key: str) -> Row | None:
    return conn.execute(select(_MD).where(_MD.c.username == username, _MD.c.key == key)).first()


def of_user(conn: Connection, username: str) -> list[Row]:
    return list(conn.execute(select(_MD.c.key, _MD.c.base_version, _MD.c.updated_at)
                             .where(_MD.c.username == username).order_by(_MD.c.updated_at.desc())))


def save(conn: Connection, username: str, key: str, xml: str, base_version: int | None, at: datetime) -> None:
    values = {"xml": xml, "base_version": base_version, "updated_at": at}
    changed = conn.execute(update(_MD).where(_MD.c.username == username, _MD.c.key == key).values(**values))
    if not changed.rowcount:
        conn.execute(_MD.insert().values(username=username, key=key, **values))


def remove(conn: Connection, username: str, key: str) -> None:
    conn.execute(delete(_MD).where(_MD.c.username == username, _MD.c.key == key))
