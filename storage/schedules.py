"""Schedules of processes with a timer start event: when the scheduler starts the next instance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ProcessSchedule(Base):
    """One row per process key whose latest version starts on a timer (timeDate, timeDuration or
    timeCycle); `remaining` counts the starts left (-1 = forever), `next_at` is NULL when done."""

    __tablename__ = "process_schedule"
    __table_args__ = (Index("ix_process_schedule_due", "next_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition_id: Mapped[int]
    version: Mapped[int]
    expression: Mapped[str] = mapped_column(Text)
    next_at: Mapped[datetime | None]
    interval_seconds: Mapped[float | None]
    remaining: Mapped[int] = mapped_column(default=1)
    started: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]
