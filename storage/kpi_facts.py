"""KPI fact tables and their upkeep.

The dashboard never loads workflow state: it aggregates these narrow, indexed tables.

* ``complaint_fact``: one row per complaint / feedback / nonconformity instance (any instance whose
  data carries ``received_at``, the data convention of processes/README.md).
* ``action_fact``: one row per corrective action of every RCA round (``rca_history`` + ``actions``).
* ``task_fact``: one row per human task (created → completed), for the bottleneck view.
* ``kpi_refresh_state``: the audit-event cursor of the incremental refresh.

``refresh(db)`` brings the facts up to date from the instances that have audit events since the
last refresh (every write of an instance records at least one audit event in the same
transaction), so no hook in the runtime is needed; the dashboard, the API and the scheduler call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import AuditEvent, Base, HumanTask, ProcessInstance

KINDS = {"complaint_to_improvement": "complaint", "customer_feedback": "feedback",
         "supplier_nonconformity": "nonconformity"}
PREFIXES = {"CMP": "complaint", "FB": "feedback", "SNC": "nonconformity"}
CHUNK = 400
# PostgreSQL sequences may hand out ids to transactions that commit later than a higher id;
# re-read the instances touched in this window on every refresh so such late commits are not missed.
PG_LOOKBACK = timedelta(minutes=5)


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
        # the same columns with the GROUP BY keys first, for long periods (engine.kpis._long)
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


# ---------------------------------------------------------------------------------------- parsing

def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    t = _time(value)
    if t is not None:
        return t.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any, size: int = 255) -> str | None:
    if value in (None, ""):
        return None
    return str(value).strip()[:size] or None


def kind_of(process_key: str, data: dict[str, Any]) -> str:
    if process_key in KINDS:
        return KINDS[process_key]
    prefix = str(data.get("reference") or "").split("-", 1)[0].upper()
    return PREFIXES.get(prefix, "complaint")


def facts_from_instance(instance_id: str, process_key: str, instance_status: str, data: dict[str, Any],
                        started_at: datetime | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The complaint_fact row and action_fact rows of one instance (None when it is not tracked)."""
    if "received_at" not in data:
        return None, []
    received = _time(data.get("received_at")) or started_at
    if received is None:
        return None, []
    acknowledged = _time(data.get("acknowledged_at"))
    closed = _time(data.get("closed_at"))
    history = [h for h in (data.get("rca_history") or []) if isinstance(h, dict)]
    first = history[0].get("effective") if history else None
    kind = kind_of(process_key, data)
    customer = data.get("supplier_name") if kind == "nonconformity" else data.get("customer_name")
    fact = {
        "instance_id": instance_id, "process_key": process_key, "kind": kind,
        "reference": _text(data.get("reference")), "instance_status": instance_status,
        "status": _text(data.get("status"), 20), "received_at": received,
        "acknowledged_at": acknowledged, "closed_at": closed,
        "ack_seconds": (acknowledged - received).total_seconds() if acknowledged else None,
        "close_seconds": (closed - received).total_seconds() if closed else None,
        "category": _text(data.get("category"), 40), "severity": _text(data.get("severity"), 20),
        "product": _text(data.get("product")), "customer": _text(customer),
        "valid": _bool(data.get("valid")), "rca_loops": _int(data.get("rca_loops"), 0, 10**6) or 0,
        "effective_first_check": _bool(first), "effective": _bool(data.get("effective")),
        "root_cause": _text(data.get("root_cause"), 2000),
        "csat": _int(data.get("csat"), 1, 5), "nps": _int(data.get("nps"), 0, 10),
        "survey_status": _text(data.get("survey_status"), 20),
        "feedback_type": _text(data.get("feedback_type"), 20),
    }
    actions: dict[str, dict[str, Any]] = {}
    rounds = [(h.get("round"), h.get("actions"), h.get("effective")) for h in history]
    rounds.append((data.get("rca_round"), data.get("actions"), None))
    for round_no, items, effective in rounds:
        for a in items or []:
            if not isinstance(a, dict):
                continue
            action_id = str(a.get("id") or f"{round_no}-{len(actions) + 1}")[:40]
            previous = actions.get(action_id)
            actions[action_id] = {
                "instance_id": instance_id, "action_id": action_id,
                "round": _int(a.get("round") or round_no, 0, 10**6) or 1, "what": _text(a.get("what"), 2000),
                "owner": _text(a.get("owner"), 80), "due_on": _date(a.get("due")),
                "done_on": _date(a.get("done_at")), "result": _text(a.get("result"), 4000),
                "effective": _bool(effective) if effective is not None else (previous or {}).get("effective"),
            }
    return fact, list(actions.values())


# ---------------------------------------------------------------------------------------- upkeep

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _upsert_instances(session: Session, instance_ids: list[str]) -> int:
    rows = session.execute(select(ProcessInstance.id, ProcessInstance.process_key, ProcessInstance.status,
                                  ProcessInstance.data, ProcessInstance.started_at)
                           .where(ProcessInstance.id.in_(instance_ids))).all()
    facts, actions = [], []
    kinds: dict[str, str] = {}
    for r in rows:
        fact, acts = facts_from_instance(r.id, r.process_key, r.status, dict(r.data or {}), r.started_at)
        if fact is not None:
            facts.append(fact)
            kinds[r.id] = fact["kind"]
            for a in acts:
                a.update(kind=fact["kind"], process_key=fact["process_key"], instance_status=fact["instance_status"])
            actions.extend(acts)
    tasks = [{"task_id": t.id, "instance_id": t.instance_id, "process_key": t.process_key, "spec_id": t.spec_id,
              "kind": kinds.get(t.instance_id),
              "name": t.name, "state": t.state, "created_at": t.created_at, "completed_at": t.completed_at,
              "seconds": (t.completed_at - t.created_at).total_seconds()
              if t.completed_at and t.state == "completed" else None}
             for t in session.execute(select(HumanTask.id, HumanTask.instance_id, HumanTask.process_key,
                                             HumanTask.spec_id, HumanTask.name, HumanTask.state,
                                             HumanTask.created_at, HumanTask.completed_at)
                                      .where(HumanTask.instance_id.in_(instance_ids)))]
    _roll_actions(session, instance_ids, actions)
    for table in (ComplaintFact, ActionFact, TaskFact):
        session.execute(delete(table).where(table.instance_id.in_(instance_ids)))
    if facts:
        session.execute(insert(ComplaintFact), facts)
    if actions:
        session.execute(insert(ActionFact), actions)
    if tasks:
        session.execute(insert(TaskFact), tasks)
    return len(facts)


def _rollup_rows(session: Session, where: list[Any]) -> Any:
    A = ActionFact
    return session.execute(select(A.kind, A.process_key, A.instance_status, A.due_on, func.count(),
                                  func.sum(case((A.done_on.is_not(None), 1), else_=0)),
                                  func.sum(case((A.done_on <= A.due_on, 1), else_=0)))
                           .where(*where, A.kind.is_not(None), A.due_on.is_not(None))
                           .group_by(A.kind, A.process_key, A.instance_status, A.due_on))


def _roll_actions(session: Session, instance_ids: list[str], new_actions: list[dict[str, Any]]) -> None:
    """Apply to action_rollup the change from the instances' current action_fact rows to `new_actions`."""
    delta: dict[tuple[Any, ...], list[int]] = {}
    for kind, process_key, status, due, n, done, on_time in _rollup_rows(
            session, [ActionFact.instance_id.in_(instance_ids)]):
        d = delta.setdefault((kind, process_key, status, due), [0, 0, 0])
        d[0] -= int(n)
        d[1] -= int(done or 0)
        d[2] -= int(on_time or 0)
    for a in new_actions:
        if a.get("kind") is None or a["due_on"] is None:
            continue
        d = delta.setdefault((a["kind"], a["process_key"], a["instance_status"], a["due_on"]), [0, 0, 0])
        d[0] += 1
        d[1] += a["done_on"] is not None
        d[2] += a["done_on"] is not None and a["done_on"] <= a["due_on"]
    delta = {k: v for k, v in delta.items() if any(v)}
    if not delta:
        return
    R = ActionRollup
    existing = {}
    dates = sorted({k[3] for k in delta})
    for i in range(0, len(dates), CHUNK):
        for row in session.execute(select(R.id, R.kind, R.process_key, R.instance_status, R.due_on, R.actions, R.done,
                                          R.on_time).where(R.due_on.in_(dates[i:i + CHUNK]))):
            existing[(row.kind, row.process_key, row.instance_status, row.due_on)] = row
    inserts, updates, gone = [], [], []
    for key, (n, done, on_time) in delta.items():
        row = existing.get(key)
        if row is None:
            inserts.append({"kind": key[0], "process_key": key[1], "instance_status": key[2], "due_on": key[3],
                            "actions": n, "done": done, "on_time": on_time})
        elif row.actions + n == 0:
            gone.append(row.id)
        else:
            updates.append({"rid": row.id, "a": row.actions + n, "d": row.done + done, "o": row.on_time + on_time})
    if gone:
        session.execute(delete(R).where(R.id.in_(gone)))
    if updates:
        session.connection().execute(update(R.__table__).where(R.__table__.c.id == bindparam("rid")).values(
            actions=bindparam("a"), done=bindparam("d"), on_time=bindparam("o")), updates)
    if inserts:
        session.execute(insert(R), inserts)


def rebuild_action_rollup(session: Session) -> None:
    """Recompute action_rollup from action_fact (after bulk loads that bypass the refresh)."""
    session.execute(delete(ActionRollup))
    rows = [{"kind": k, "process_key": p, "instance_status": st, "due_on": due, "actions": int(n),
             "done": int(done or 0), "on_time": int(on_time or 0)}
            for k, p, st, due, n, done, on_time in _rollup_rows(session, [])]
    for i in range(0, len(rows), 5000):
        session.execute(insert(ActionRollup), rows[i:i + 5000])


def refresh_facts(session: Session, *, full: bool = False, now: datetime | None = None) -> int:
    """Bring the fact tables up to date inside the caller's transaction; returns instances refreshed."""
    now = now or datetime.now(timezone.utc)
    query = select(KpiRefreshState).where(KpiRefreshState.name == "facts")
    if _dialect(session) == "postgresql":
        query = query.with_for_update()
    state = session.scalars(query).first()
    if state is None:
        state = KpiRefreshState(name="facts", last_audit_id=0, refreshed_at=None)
        session.add(state)
        session.flush()
    top = session.scalar(select(func.max(AuditEvent.id))) or 0
    if full:
        ids: Iterable[str] = session.scalars(select(ProcessInstance.id))
    else:
        touched = AuditEvent.id > state.last_audit_id
        if state.refreshed_at is not None and _dialect(session) != "sqlite":
            touched = or_(touched, AuditEvent.at >= state.refreshed_at - PG_LOOKBACK)
        ids = session.scalars(select(AuditEvent.instance_id).where(touched, AuditEvent.instance_id.is_not(None))
                              .distinct())
    ids = list(ids)
    count = 0
    for i in range(0, len(ids), CHUNK):
        count += _upsert_instances(session, ids[i:i + CHUNK])
    state.last_audit_id = max(top, state.last_audit_id)
    state.refreshed_at = now
    return count


def needs_refresh(session: Session) -> bool:
    state = session.get(KpiRefreshState, "facts")
    if state is None:
        return True
    if _dialect(session) != "sqlite":
        return True  # the look-back window (see PG_LOOKBACK) must be re-read
    top = session.scalar(select(func.max(AuditEvent.id))) or 0
    return top > state.last_audit_id


def refresh(db: Any, *, full: bool = False, now: datetime | None = None) -> int:
    """Incremental refresh in its own unit of work (a no-op read when nothing changed on SQLite)."""
    if not full:
        with db.read() as session:
            if not needs_refresh(session):
                return 0
    try:
        with db.write() as session:
            return refresh_facts(session, full=full, now=now)
    except IntegrityError:
        return 0  # another process created the state row at the same moment; it refreshed for us
