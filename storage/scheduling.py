"""Scheduler-owned tables: task escalations, the notification outbox, in-app notifications and the
scheduler's cursors.

Registered on ``storage.models.Base`` so ``Database.create_all()`` and Alembic (revision 0003) see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base


class TaskEscalation(Base):
    """One escalation level applied to one human task for one due date (idempotent by the unique key).

    A changed due date starts a new cycle (new `due_at`), so its levels apply again.
    """

    __tablename__ = "task_escalation"
    __table_args__ = (
        UniqueConstraint("task_id", "due_at", "level", name="uq_task_escalation_level"),
        Index("ix_task_escalation_task", "task_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36))
    instance_id: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    at: Mapped[datetime]
    # usernames (and addresses) that were notified
    notified: Mapped[list[Any]] = mapped_column(default=list)
    worker: Mapped[str | None] = mapped_column(String(120))


class NotificationOutbox(Base):
    """An e-mail waiting to be (or already) delivered; `dedupe_key` makes enqueueing idempotent."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notification_outbox_dedupe"),
        Index("ix_notification_outbox_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    username: Mapped[str | None] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(36))
    instance_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending | sent | skipped | withheld
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class InAppNotification(Base):
    __tablename__ = "in_app_notification"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_in_app_notification_dedupe"),
        Index("ix_in_app_notification_user", "username", "read_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(36))
    instance_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class SchedulerCursor(Base):
    """Named high-water marks, e.g. the last audit event turned into notifications."""

    __tablename__ = "scheduler_cursor"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]


def lock_cursor(session: Session, name: str, now: datetime) -> SchedulerCursor:
    """The named cursor, created at 0 if missing, locked until the transaction ends.

    Schedulers meeting a missing cursor at once each insert it: ON CONFLICT DO NOTHING makes the
    later insert wait for the first and then do nothing (a plain INSERT failed with a unique
    violation), and FOR UPDATE then waits for the first transaction's row lock. On SQLite the write
    transaction already excludes every other writer.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(SchedulerCursor).values(name=name, value=0, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["name"]))
    stmt = select(SchedulerCursor).where(SchedulerCursor.name == name)
    return session.scalars(stmt.with_for_update() if dialect == "postgresql" else stmt).one()

