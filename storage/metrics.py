"""SQL behind /metrics: figures counted at scrape time, and histograms kept in the database.

Figures (task counts, backlogs, incidents) are read from the tables every process writes, so any
web worker answers the same, whichever process (web, scheduler, CLI) did the work. A histogram
observed by scheduler processes (timer lateness) cannot live in one process's memory: its bucket
counts are added to `metric_histogram` rows, one upsert per bucket per pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Float, String, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.external_tasks import ExternalTaskRow
from storage.models import Base, HumanTask, Incident, Timer
from storage.scheduling import NotificationOutbox

SUM = "sum"  # the bucket row holding the sum of the observed values


class MetricHistogram(Base):
    """One bucket of a histogram (`bucket` = its upper bound as text, e.g. "0.5", "+Inf"; or "sum"),
    not cumulative: exposition adds them up."""

    __tablename__ = "metric_histogram"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)


_MH = MetricHistogram.__table__


def add_to_histogram(session: Session, name: str, counts: Mapping[str, float]) -> None:
    """Add `counts` ({bucket: n}, and SUM) to histogram `name`, creating rows on first use."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for bucket, value in counts.items():
        if value:
            stmt = insert(_MH).values(name=name, bucket=bucket, value=value)
            session.execute(stmt.on_conflict_do_update(index_elements=[_MH.c.name, _MH.c.bucket],
                                                       set_={"value": _MH.c.value + stmt.excluded.value}))


def histogram(session: Session, name: str) -> dict[str, float]:
    """{bucket: count} and SUM of histogram `name` ({} before its first observation)."""
    return {bucket: value for bucket, value in session.execute(
        select(_MH.c.bucket, _MH.c.value).where(_MH.c.name == name))}


def figures(session: Session, now: datetime) -> dict[str, Any]:
    """Counts at this moment: tasks created and completed (ever), mails waiting in the outbox,
    unresolved incidents, due timers, and open external tasks per topic."""
    count = func.count()
    return {
        "tasks_created": session.scalar(select(count).select_from(HumanTask)) or 0,
        "tasks_completed": session.scalar(select(count).select_from(HumanTask)
                                          .where(HumanTask.state == "completed")) or 0,
        "outbox_pending": session.scalar(select(count).select_from(NotificationOutbox)
                                         .where(NotificationOutbox.state == "pending")) or 0,
        "incidents_open": session.scalar(select(count).select_from(Incident)
                                         .where(Incident.resolved_at.is_(None))) or 0,
        "timers_due": session.scalar(select(count).select_from(Timer)
                                     .where(Timer.state == "waiting", Timer.due_at <= now)) or 0,
        "external_tasks_open": dict(session.execute(
            select(ExternalTaskRow.topic, count).where(ExternalTaskRow.state == "open")
            .group_by(ExternalTaskRow.topic)).all()),
    }
