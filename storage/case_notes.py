"""Comments and attachments on a case (a process instance), and their SQL.

Attachments are kept in the database itself (a bytea/BLOB column), so a backup of the database keeps
them; listing them never reads their content.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Index, Integer, LargeBinary, Row, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class CaseComment(Base):
    __tablename__ = "case_comment"
    __table_args__ = (Index("ix_case_comment_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class CaseAttachment(Base):
    __tablename__ = "case_attachment"
    __table_args__ = (Index("ix_case_attachment_instance", "instance_id", "uploaded_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex: opaque in URLs
    instance_id: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))  # as sniffed from the content, not as sent
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str | None] = mapped_column(String(80))  # None: the customer on the public form
    uploaded_at: Mapped[datetime]
    content: Mapped[bytes] = mapped_column(LargeBinary)


_C = CaseComment.__table__
_A = CaseAttachment.__table__
_A_META = [c for c in _A.c if c.name != "content"]


def add_comment(conn: Connection, instance_id: str, author: str, body: str, at: datetime) -> Row:
    new_id = conn.execute(_C.insert().returning(_C.c.id),
                          {"instance_id": instance_id, "author": author, "body": body, "created_at": at}).scalar_one()
    return conn.execute(select(_C).where(_C.c.id == new_id)).one()


def comments(conn: Connection, instance_id: str) -> list[Row]:
    return list(conn.execute(select(_C).where(_C.c.instance_id == instance_id).order_by(_C.c.id)))


def add_attachment(conn: Connection, values: dict[str, object]) -> None:
    conn.execute(_A.insert(), values)


def attachments(conn: Connection, instance_id: str) -> list[Row]:
    """The instance's attachments without their content, oldest first."""
    return list(conn.execute(select(*_A_META).where(_A.c.instance_id == instance_id)
                             .order_by(_A.c.uploaded_at, _A.c.id)))


def attachment_meta(conn: Connection, attachment_id: str) -> Row | None:
    return conn.execute(select(*_A_META).where(_A.c.id == attachment_id)).first()


def attachment_content(conn: Connection, attachment_id: str) -> bytes | None:
    return conn.execute(select(_A.c.content).where(_A.c.id == attachment_id)).scalar_one_or_none()
