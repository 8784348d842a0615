"""KPI fact tables (no business rules: engine/kpi_rules.py decides what a fact row holds, engine/kpis.py
runs the refresh). Their upkeep is storage/kpi_upkeep.py, the rollups' counting storage/kpi_rollups.py,
the dashboard's reads storage/kpi_queries.py and storage/kpi_fact_reads.py.

The dashboard never loads workflow state: it aggregates these narrow, indexed tables.

* ``complaint_fact``: one row per tracked instance (complaint / feedback / nonconformity).
* ``action_fact``: one row per corrective action of every RCA round.
* ``task_fact``: one row per human task (created → completed), for the bottleneck view.
* ``action_rollup``: actions per (kind, process, instance status, due date).
* ``complaint_rollup``: complaint figures per UTC day of receipt / closure (the dashboard's year).
* ``step_rollup``: completed human tasks per step and UTC day of completion.
* ``kpi_refresh_state``: the audit-event cursor of the incremental refresh.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

CHUNK = 400  # instance ids per IN list


class ComplaintFact(Base):
    __tablename__ = "complaint_fact"
    __table_args__ = (
        Index("ix_complaint_fact_kind_received", "kind", "received_at"),
        Index("ix_complaint_fact_kind_closed", "kind", "closed_at"),
        Index("ix_complaint_fact_process_received", "process_key", "received_at"),
        Index("ix_complaint_fact_recurrence", "category", "product", "closed_at"),
        # covering indexes of the dashboard (migration 0006): each KPI pass reads one index range
        # instead of looking up 100,000 table rows
        Index("ix_complaint_fact_received_cov", "kind", "received_at", "instance_status", "valid", "status",
              "acknowledged_at", "ack_seconds", "closed_at", "category", "product", "instance_id", "process_key"),
        Index("ix_complaint_fact_closed_cov", "kind", "closed_at", "close_seconds", "effective_first_check",
              "rca_loops", "process_key"),
        Index("ix_complaint_fact_survey_cov", "closed_at", "csat", "nps", "kind", "process_key"),
        Index("ix_complaint_fact_first_closed", "kind", "category", "product", "closed_at"),
        Index("ix_complaint_fact_recurrence_cov", "kind", "category", "product", "received_at", "valid", "closed_at",
              "instance_id", "process_key"),
        Index("ix_complaint_fact_root_cause", "kind", "received_at", "root_cause", "process_key"),
        # the same columns with the GROUP BY keys first, for long periods (storage.kpi_queries.FactQuery.long)
        Index("ix_complaint_fact_root_cause_order", "kind", "root_cause", "received_at", "process_key"),
        Index("ix_complaint_fact_severity", "severity"),  # the filter form's distinct severities
        Index("ix_complaint_fact_category_order", "kind", "category", "received_at", "process_key"),
        Index("ix_complaint_fact_ack_order", "kind", "ack_seconds", "received_at", "process_key"),
        Index("ix_complaint_fact_close_order", "kind", "close_seconds", "closed_at", "process_key"),
        Index("ix_complaint_fact_survey_order", "csat", "nps", "closed_at", "kind", "process_key"),
    )

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    process_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    ack_seconds: Mapped[float | None] = mapped_column(Float)
    close_seconds: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str | None] = mapped_column(String(20))
    product: Mapped[str | None] = mapped_column(String(255))
    customer: Mapped[str | None] = mapped_column(String(255))
    valid: Mapped[bool | None] = mapped_column(Boolean)
    rca_loops: Mapped[int] = mapped_column(Integer, default=0)
    effective_first_check: Mapped[bool | None] = mapped_column(Boolean)
    effective: Mapped[bool | None] = mapped_column(Boolean)
    root_cause: Mapped[str | None] = mapped_column(Text)
    csat: Mapped[int | None] = mapped_column(Integer)
    nps: Mapped[int | None] = mapped_column(Integer)
    survey_status: Mapped[str | None] = mapped_column(String(20))
    feedback_type: Mapped[str | None] = mapped_column(String(20))


class ActionFact(Base):
    __tablename__ = "action_fact"
    __table_args__ = (Index("ix_action_fact_due", "due_on", "done_on"),
                      Index("ix_action_fact_instance", "instance_id"),
                      Index("ix_action_fact_kind_due", "kind", "due_on", "done_on", "instance_status"),
                      Index("ix_action_fact_kind_open", "kind", "done_on", "instance_status", "due_on"),
                      Index("ix_action_fact_process_due", "process_key", "due_on", "done_on", "instance_status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    action_id: Mapped[str] = mapped_column(String(40))
    round: Mapped[int] = mapped_column(Integer, default=1)
    what: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(80))
    due_on: Mapped[date | None] = mapped_column(Date)
    done_on: Mapped[date | None] = mapped_column(Date)
    result: Mapped[str | None] = mapped_column(Text)
    effective: Mapped[bool | None] = mapped_column(Boolean)
    # copies of the instance's complaint_fact columns (set by the refresh, migration 0006) so the
    # dashboard counts actions without joining 300,000 rows; NULL on rows written before: those are joined
    kind: Mapped[str | None] = mapped_column(String(16))
    process_key: Mapped[str | None] = mapped_column(String(255))
    instance_status: Mapped[str | None] = mapped_column(String(16))


class ActionRollup(Base):
    """Actions with a due date per (kind, process, instance status, due date): the dashboard's period
    figures read these few rows instead of scanning 300,000 actions. Kept by the refresh from the
    action_fact rows that carry the kind copy (``_roll_actions``); ``rebuild_action_rollup`` recomputes it
    (migration 0006, bulk loads)."""
    __tablename__ = "action_rollup"
    __table_args__ = (UniqueConstraint("kind", "process_key", "instance_status", "due_on",
                                       name="uq_action_rollup_key"),
                      Index("ix_action_rollup_process_due", "process_key", "due_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    actions: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)


class ComplaintRollup(Base):
    """Complaint figures per UTC day, kept by the refresh (migration 0017): the dashboard sums these
    rows for the whole days of a period and reads only its partial first and last days from
    complaint_fact (storage/kpi_queries.py). One row per (basis, kind, process, instance status, day,
    measure, value): ``basis`` says which date the day is (``received`` or ``closed``; ``received/month``
    and ``closed/month`` sum a month's days, ``day`` its first), ``measure`` which
    count ``n`` is (see ``_contributions``), ``value`` the group of counts by value (category, root cause,
    "csat:nps"). The row with basis ``meta`` names the rules the counts were made with; without it
    (never built, other rules) the figures are read from complaint_fact alone."""
    __tablename__ = "complaint_rollup"
    __table_args__ = (Index("ix_complaint_rollup_kind", "basis", "kind", "measure", "day", "instance_status"),
                      Index("ix_complaint_rollup_process", "basis", "process_key", "measure", "day", "instance_status"),
                      Index("ix_complaint_rollup_measure", "basis", "measure", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    basis: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    instance_status: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    measure: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Text)
    n: Mapped[int] = mapped_column(Integer)


class StepRollup(Base):
    """Completed human tasks per (kind, process, step, name, UTC day of completion), kept by the refresh
    with complaint_rollup (migration 0017): the dashboard's step times for the whole days of a period."""
    __tablename__ = "step_rollup"
    __table_args__ = (Index("ix_step_rollup_kind", "kind", "day"), Index("ix_step_rollup_process", "process_key", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    process_key: Mapped[str] = mapped_column(String(255))
    spec_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    day: Mapped[date] = mapped_column(Date)
    completed: Mapped[int] = mapped_column(Integer)
    seconds_sum: Mapped[float] = mapped_column(Float)
    seconds_n: Mapped[int] = mapped_column(Integer)
    seconds_max: Mapped[float | None] = mapped_column(Float)


class TaskFact(Base):
    __tablename__ = "task_fact"
    __table_args__ = (Index("ix_task_fact_completed", "completed_at", "spec_id"),
                      Index("ix_task_fact_instance", "instance_id"),
                      Index("ix_task_fact_kind_state", "kind", "state", "completed_at", "process_key", "spec_id",
                            "seconds", "name"),
                      Index("ix_task_fact_kind_step", "kind", "state", "process_key", "spec_id", "completed_at",
                            "seconds", "name"))

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    process_key: Mapped[str] = mapped_column(String(255))
    spec_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    # the instance's complaint_fact kind (0006); NULL when not tracked or written before: joined
    kind: Mapped[str | None] = mapped_column(String(16))


class KpiRefreshState(Base):
    __tablename__ = "kpi_refresh_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_audit_id: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None]


