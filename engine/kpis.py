"""KPI service (no Flask): figures for the dashboard, the API, exports and the ISO 9001 report.

Everything is computed with SQL aggregates over the fact tables of storage/kpi_facts.py; the only
rows that reach Python are aggregate rows (per category, per step, per trend bucket, per CSAT/NPS
pair), the two rows around each percentile, and the listings of exports and the evidence report.

Speed (issue 7: one year over 100,000 complaints and 300,000 actions): each figure is one pass over
a covering index of migration 0006, never a lookup per fact row; no per-complaint probe (recurrence
uses the first closure per category and product); trend buckets are range counts; action figures for
the period come from ``action_rollup`` and steps/actions are scoped by columns copied onto their facts
(rows without the copies are joined). On SQLite, long periods read GROUP BYs and percentiles from
indexes in key/value order (no sort), short ones from the date indexes (see ``_long``/``_plain``).

Conventions (documented in the README):
* A period is a range of local dates in the configured time zone (``PDCAFLOW_TIMEZONE``), ``to``
  inclusive; it becomes the UTC instants [start, end). Default: the last 90 days up to today.
* Case KPIs (received/open/closed, times, actions, effectiveness, Pareto, root causes, steps) count
  complaints (``kind = complaint``) unless a process is chosen, then that process's instances.
  Satisfaction counts every instance with a score (complaint surveys and feedback), closed in the period.
* Percentiles interpolate linearly between the closest ranks (PostgreSQL ``percentile_cont``).
* Acknowledged within target: acknowledged within 24 h of receipt, among complaints received in
  the period whose outcome is known (acknowledged, or received more than 24 h ago).
* Actions: those due in the period; on time = done on or before the due date; overdue = not done
  and due before today. ``backlog_open``/``backlog_overdue`` are today's figures regardless of period.
* Recurrence: a complaint received in the period whose category and product equal those of an
  earlier complaint that was already closed when it arrived.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from engine import clock
from engine.errors import EngineError
from storage.kpi_facts import KINDS, ActionFact, ActionRollup, ComplaintFact, TaskFact, refresh
from storage.models import AuditEvent

DEFAULT_DAYS = 90
ACK_TARGET_S = 24 * 3600
MAX_DAYS = 3660
FILTERS = ("process", "product", "category", "severity", "customer")


class KpiQueryError(EngineError):
    http_status = 422
    code = "invalid"


@dataclass(frozen=True)
class KpiQuery:
    from_date: date
    to_date: date
    tz_name: str = "UTC"
    process: str | None = None
    product: str | None = None
    category: str | None = None
    severity: str | None = None
    customer: str | None = None
    granularity: str | None = None  # week | month; default week up to 26 weeks, else month

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.from_date, time(), self.tz).astimezone(timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.to_date + timedelta(days=1), time(), self.tz).astimezone(timezone.utc)

    @property
    def bucket(self) -> str:
        if self.granularity in ("week", "month"):
            return self.granularity
        return "week" if (self.to_date - self.from_date).days < 26 * 7 else "month"

    def filters(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in FILTERS}

    def args(self) -> dict[str, str]:
        """Query-string arguments that reproduce this query."""
        out = {"from": self.from_date.isoformat(), "to": self.to_date.isoformat()}
        out.update({k: v for k, v in self.filters().items() if v})
        if self.granularity:
            out["granularity"] = self.granularity
        return out


def build_query(args: dict[str, Any], tz_name: str = "UTC", today: date | None = None) -> KpiQuery:
    """A KpiQuery from request arguments (`from`, `to` as ISO dates, the filters); raises KpiQueryError."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KpiQueryError(f"unknown time zone '{tz_name}'") from exc
    today = today or clock.now().astimezone(zone).date()
    problems = []

    def parse(name: str, default: date) -> date:
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw[:10]) if len(raw) > 10 and raw[10] == "T" else date.fromisoformat(raw)
        except ValueError:
            problems.append({"field": name, "message": "must be an ISO date (YYYY-MM-DD)"})
            return default

    to_date = parse("to", today)
    from_date = parse("from", to_date - timedelta(days=DEFAULT_DAYS - 1))
    if not problems and from_date > to_date:
        problems.append({"field": "from", "message": "must not be after 'to'"})
    if not problems and (to_date - from_date).days > MAX_DAYS:
        problems.append({"field": "from", "message": f"the period may span at most {MAX_DAYS} days"})
    granularity = (args.get("granularity") or "").strip() or None
    if granularity not in (None, "week", "month"):
        problems.append({"field": "granularity", "message": "must be week or month"})
    if problems:
        raise KpiQueryError("invalid period: " + "; ".join(f"{p['field']} {p['message']}" for p in problems),
                            problems)
    values = {name: ((args.get(name) or "").strip()[:255] or None) for name in FILTERS}
    return KpiQuery(from_date, to_date, tz_name, granularity=granularity, **values)


# ---------------------------------------------------------------------------------------- SQL helpers

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _epoch(session: Session, column: Any) -> Any:
    if _dialect(session) == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.extract("epoch", column), BigInteger)


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[int, int]]:
    """[(utc epoch from which it applies, utc offset seconds)] for the zone over [start, end]."""

    def offset(t: datetime) -> int:
        return int(t.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]

    changes = [(0, offset(start))]
    t = start
    while t < end:
        nxt = min(t + timedelta(days=1), end)
        if offset(nxt) != changes[-1][1]:
            lo, hi = int(t.timestamp()), int(nxt.timestamp())
            while hi - lo > 1:  # first second with the new offset
                mid = (lo + hi) // 2
                if offset(datetime.fromtimestamp(mid, timezone.utc)) == changes[-1][1]:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi, offset(nxt)))
        t = nxt
    return changes


def _local_day(session: Session, column: Any, q: KpiQuery) -> Any:
    """SQL: the local date of `column` as days since 1970-01-01 (exact across DST changes)."""
    epoch = _epoch(session, column)
    changes = _offset_changes(q.tz, q.start, q.end)
    if len(changes) == 1:
        shifted = epoch + changes[0][1]
    else:
        whens = [(epoch < changes[i][0], literal(changes[i - 1][1])) for i in range(1, len(changes))]
        shifted = epoch + case(*whens, else_=literal(changes[-1][1]))
    return cast(shifted + 86400 * 100000, BigInteger) // 86400 - 100000  # integer floor division for any sign


def _day(number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(number))


def _bucket_start(day: date, bucket: str) -> date:
    return day.replace(day=1) if bucket == "month" else day - timedelta(days=day.weekday())


def _buckets(q: KpiQuery) -> list[date]:
    out, d = [], _bucket_start(q.from_date, q.bucket)
    while d <= q.to_date:
        out.append(d)
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1) if q.bucket == "month" else d + timedelta(days=7)
    return out


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# ---------------------------------------------------------------------------------------- scopes

def _filter_conditions(q: KpiQuery, fact: Any = ComplaintFact) -> list[Any]:
    out = []
    for name in ("product", "category", "severity", "customer"):
        value = getattr(q, name)
        if value:
            out.append(getattr(fact, name) == value)
    if q.process:
        out.append(fact.process_key == q.process)
    return out


def case_scope(q: KpiQuery, fact: Any = ComplaintFact) -> list[Any]:
    """Conditions of the cases the case KPIs count (complaints, or the chosen process)."""
    out = _filter_conditions(q, fact)
    if not q.process:
        out.append(fact.kind == "complaint")
    return out


def _in(column: Any, q: KpiQuery) -> Any:
    return and_(column >= q.start, column < q.end)


# ---------------------------------------------------------------------------------------- the figures

def compute(db: Any, q: KpiQuery, *, now: datetime | None = None, refresh_first: bool = True) -> dict[str, Any]:
    """All dashboard figures for the query, as JSON-ready values."""
    now = now or clock.now()
    if refresh_first:
        refresh(db, now=now)
    with db.read() as session:
        return _compute(session, q, now)


LONG_PERIOD_DAYS = 180


def _plain(session: Session, column: Any) -> Any:
    """SQLite: `+column`, the same value, but a condition on it no longer chooses an index."""
    if _dialect(session) != "sqlite":
        return column
    return literal_column(f"+{column.table.name}.{column.name}", type_=column.type)


def _long(q: KpiQuery) -> bool:
    """Long periods read GROUP BYs from indexes led by the group keys (no sort of the period's rows);
    short ones from the index on the date column (few rows to sort even with a long history). SQLite
    without table statistics would always prefer one of them, so the other is masked with `_plain`."""
    return (q.to_date - q.from_date).days >= LONG_PERIOD_DAYS


def _percentiles(session: Session, q: KpiQuery, column: Any, date_column: Any, scope: list[Any],
                 n: int) -> list[float | None]:
    """[median, p90] of `column` over the cases in `scope` whose `date_column` lies in the period, `n` of
    them with a value; exact (linear interpolation between the closest ranks, PostgreSQL percentile_cont).

    SQLite has no percentile aggregate: each percentile reads the two values around its rank with
    ORDER BY ... LIMIT 2 OFFSET rank. For long periods the rows are walked in value order along the
    index (kind, value, date) (migration 0006), so nothing is sorted; short periods sort their few
    rows from the date index."""
    ps = (0.5, 0.9)
    if _dialect(session) == "postgresql":
        row = session.execute(select(*[func.percentile_cont(p).within_group(column.asc()) for p in ps])
                              .where(*scope, _in(date_column, q), column.is_not(None))).one()
        return [float(v) if v is not None else None for v in row]
    if n == 0:
        return [None for _ in ps]
    if _long(q) and not q.process:  # a process spans several kinds: no single ordered index range
        stmt = select(column).where(*scope, _in(_plain(session, date_column), q), column.is_not(None)).order_by(column)
    else:
        stmt = select(column).where(*scope, _in(date_column, q), column.is_not(None)).order_by(_plain(session, column))
    out: list[float | None] = []
    for p in ps:
        k = (n - 1) * p
        lo = math.floor(k)
        frac = k - lo
        values = [float(v) for v in session.scalars(stmt.offset(lo).limit(2))]
        out.append(values[0] + (values[1] - values[0]) * frac if len(values) > 1 and frac else values[0])
    return out


def _scope_copies(q: KpiQuery, fact: Any) -> list[Any] | None:
    """Case scope on the kind/process copies of action_fact and task_fact, or None when a filter needs
    columns only complaint_fact has (then the rows are joined to it)."""
    if any(getattr(q, name) for name in ("product", "category", "severity", "customer")):
        return None
    return [fact.process_key == q.process, fact.kind.is_not(None)] if q.process else [fact.kind == "complaint"]


def _action_counts(session: Session, q: KpiQuery, scope: list[Any], today: date, real_today: date) -> list[int]:
    """[due in period, done, done on time, overdue, backlog open, backlog overdue]."""
    A, F = ActionFact, ComplaintFact
    period = select(func.count(), func.sum(case((A.done_on.is_not(None), 1), else_=0)),
                    func.sum(case((and_(A.done_on.is_not(None), A.done_on <= A.due_on), 1), else_=0)),
                    func.sum(case((and_(A.done_on.is_(None), A.due_on < today), 1), else_=0))
                    ).select_from(A).where(A.due_on >= q.from_date, A.due_on <= q.to_date)
    backlog = select(func.count(), func.sum(case((A.due_on < real_today, 1), else_=0))).select_from(A).where(
        A.done_on.is_(None))
    copies = _scope_copies(q, A)
    totals = [0] * 6
    variants = []
    if copies is not None:  # the rollup and copies kept by the refresh, then the rows written before them (joined)
        R = ActionRollup
        rolled = select(func.sum(R.actions), func.sum(R.done), func.sum(R.on_time),
                        func.sum(case((R.due_on < today, R.actions - R.done), else_=0))).where(
            *([R.process_key == q.process] if q.process else [R.kind == "complaint"]),
            R.due_on >= q.from_date, R.due_on <= q.to_date, R.instance_status != "cancelled")
        variants.append((rolled, backlog.where(*copies, A.instance_status.notin_(("cancelled", "completed")))))
        joined = [A.kind.is_(None)]
    else:
        joined = []
    variants.append((period.join(F, F.instance_id == A.instance_id).where(*scope, *joined,
                                                                          F.instance_status != "cancelled"),
                     backlog.join(F, F.instance_id == A.instance_id).where(
                         *scope, *joined, F.instance_status.notin_(("cancelled", "completed")))))
    for in_period, open_now in variants:
        row = [*session.execute(in_period).one(), *session.execute(open_now).one()]
        totals = [t + int(v or 0) for t, v in zip(totals, row, strict=True)]
    return totals


def _step_times(session: Session, q: KpiQuery, scope: list[Any]) -> list[dict[str, Any]]:
    T, F = TaskFact, ComplaintFact
    completed_at = _plain(session, T.completed_at) if _long(q) else T.completed_at
    keys = (T.process_key, T.spec_id) if _long(q) else (_plain(session, T.process_key), _plain(session, T.spec_id))
    done = select(*keys, func.max(T.name), func.count(), func.sum(T.seconds), func.count(T.seconds),
                  func.max(T.seconds)).where(T.state == "completed", _in(completed_at, q)).group_by(*keys)
    waiting = select(T.process_key, T.spec_id, func.max(T.name), func.count()).where(T.state.in_(("open", "claimed")))
    copies = _scope_copies(q, T)
    variants = []
    if copies is not None:
        variants.append((done.where(*copies), waiting.where(*copies)))
        joined = [T.kind.is_(None)]
    else:
        joined = []
    variants.append((done.join(F, F.instance_id == T.instance_id).where(*scope, *joined),
                     waiting.join(F, F.instance_id == T.instance_id).where(*scope, *joined)))
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for done_q, waiting_q in variants:
        for key, spec, name, n, total, counted, longest in session.execute(done_q):
            s = steps.setdefault((key, spec), {"name": name, "completed": 0, "sum": 0.0, "counted": 0, "max": None,
                                               "open": 0})
            s["name"] = max(s["name"], name)
            s["completed"] += int(n)
            s["sum"] += float(total or 0)
            s["counted"] += int(counted or 0)
            if longest is not None:
                s["max"] = longest if s["max"] is None else max(s["max"], longest)
        for key, spec, name, n in session.execute(waiting_q.group_by(T.process_key, T.spec_id)):
            s = steps.setdefault((key, spec), {"name": name, "completed": 0, "sum": 0.0, "counted": 0, "max": None,
                                               "open": 0})
            s["open"] += int(n)
    out = [{"process_key": key, "spec_id": spec, "name": s["name"], "completed": s["completed"],
            "avg_hours": _hours(s["sum"] / s["counted"]) if s["counted"] else None, "max_hours": _hours(s["max"]),
            "open": s["open"]} for (key, spec), s in steps.items()]
    return sorted(out, key=lambda s: (-(s["avg_hours"] or 0), s["process_key"], s["spec_id"]))


def _trend_counts(session: Session, column: Any, scope: list[Any], q: KpiQuery) -> list[int]:
    """Rows with `column` in each trend bucket (clipped to the period): one statement of range counts
    over the covering index, bucket edges computed here as UTC instants of local midnights (exact across
    DST), instead of grouping every row by its local day."""
    starts = _buckets(q)
    edges = [max(b, q.from_date) for b in starts] + [q.to_date + timedelta(days=1)]
    instants = [datetime.combine(d, time(), q.tz).astimezone(timezone.utc) for d in edges]
    counts = [select(func.count()).where(*scope, column >= lo, column < hi).scalar_subquery()
              for lo, hi in zip(instants, instants[1:], strict=False)]
    return [int(v or 0) for v in session.execute(select(*counts)).one()]


def _compute(session: Session, q: KpiQuery, now: datetime) -> dict[str, Any]:
    """The figures in a few passes, each over one covering-index range (see migration 0006)."""
    F = ComplaintFact
    scope = case_scope(q)
    if q.process:  # every kind the refresh can give (kind_of), and the process masked for SQLite's planner,
        # so the (kind, ..., process_key) covering indexes serve instead of table lookups per row
        scope = [*_filter_conditions(replace(q, process=None)), _plain(session, F.process_key) == q.process,
                 F.kind.in_(sorted(set(KINDS.values())))]
    today = min(now, q.end - timedelta(seconds=1)).astimezone(q.tz).date()
    received_in = _in(F.received_at, q)
    closed_in = _in(F.closed_at, q)
    trend = {b: {"start": b.isoformat(), "received": 0, "closed": 0} for b in _buckets(q)}

    # --- pass 1, complaints received in the period: volume, acknowledgement, Pareto
    not_cancelled = F.instance_status != "cancelled"
    ack_eligible = and_(or_(F.acknowledged_at.is_not(None), F.received_at <= now - timedelta(seconds=ACK_TARGET_S)),
                        not_cancelled)
    row = session.execute(
        select(func.count(), func.count(F.ack_seconds),
               func.sum(case((or_(F.valid.is_(False), F.status == "rejected"), 1), else_=0)),
               func.sum(case((F.instance_status == "cancelled", 1), else_=0)),
               func.sum(case((ack_eligible, 1), else_=0)),
               func.sum(case((and_(ack_eligible, F.ack_seconds <= ACK_TARGET_S), 1), else_=0)),
               func.sum(case((and_(F.category.is_not(None), F.product.is_not(None),
                                   or_(F.valid.is_(None), F.valid.is_(True))), 1), else_=0)))
        .where(*scope, received_in)).one()
    received, ack_count, rejected, cancelled, ack_eligible_n, ack_within, rec_base = (int(v or 0) for v in row)
    # by category: long periods walk the index (kind, category, received_at) in category order
    category = F.category if _long(q) else _plain(session, F.category)
    by_category: dict[str | None, int] = {c: int(n) for c, n in session.execute(
        select(category, func.count()).where(*scope, _in(_plain(session, F.received_at), q) if _long(q)
                                             else received_in).group_by(category))}
    for bucket, n in zip(trend.values(), _trend_counts(session, F.received_at, scope, q), strict=True):
        bucket["received"] = n

    # Recurrence: the earliest closure per (kind, category, product) is computed once (an index scan);
    # then per group one index range of the complaints received after it (no probe per complaint).
    # A complaint closed before it was received (bad data) could be its own earliest closure: for
    # that case only the EXISTS over the other complaints decides.
    firsts_where = [F.closed_at.is_not(None), F.category.is_not(None), F.product.is_not(None)]
    if not q.process:
        firsts_where.append(F.kind == "complaint")
    firsts = (select(F.kind, F.category, F.product, func.min(F.closed_at).label("first_closed"))
              .where(*firsts_where).group_by(F.kind, F.category, F.product).subquery("firsts"))
    earlier = aliased(ComplaintFact)
    other_earlier = exists().where(earlier.category == F.category, earlier.product == F.product,
                                   earlier.kind == F.kind, earlier.instance_id != F.instance_id,
                                   earlier.closed_at < F.received_at)
    recurrences = session.scalar(
        select(func.count()).select_from(firsts).join(F, and_(
            F.kind == firsts.c.kind, F.category == firsts.c.category, F.product == firsts.c.product,
            F.received_at > firsts.c.first_closed))
        .where(*scope, received_in, or_(F.valid.is_(None), F.valid.is_(True)),
               or_(F.closed_at.is_(None), F.closed_at >= F.received_at, F.closed_at > firsts.c.first_closed,
                   other_earlier))) or 0
    ack_p = _percentiles(session, q, F.ack_seconds, F.received_at, scope, ack_count)
    open_at_end = session.scalar(select(func.count()).select_from(F).where(
        *scope, F.received_at < q.end, or_(F.closed_at.is_(None), F.closed_at >= q.end), not_cancelled)) or 0

    # --- pass 2, complaints closed in the period: count, effectiveness, trend; then their close times
    checked_cond = F.effective_first_check.is_not(None)
    row = session.execute(select(
        func.count(), func.count(F.close_seconds), func.count(F.effective_first_check),
        func.sum(case((F.effective_first_check.is_(True), 1), else_=0)),
        func.sum(case((checked_cond, F.rca_loops), else_=0)),
        func.sum(case((and_(checked_cond, F.rca_loops > 0), 1), else_=0)),
    ).where(*scope, closed_in)).one()
    closed, close_count, checked, effective_first, loops_total, reopened = (int(v or 0) for v in row)
    for bucket, n in zip(trend.values(), _trend_counts(session, F.closed_at, scope, q), strict=True):
        bucket["closed"] = n
    close_p = _percentiles(session, q, F.close_seconds, F.closed_at, scope, close_count)

    # --- corrective actions (due in the period; backlog today)
    real_today = now.astimezone(q.tz).date()
    a_total, a_done, a_on_time, a_overdue, backlog_open, backlog_overdue = _action_counts(
        session, q, scope, today, real_today)

    # --- satisfaction: one pass over the (CSAT, NPS) pairs
    csat_rows: dict[int, int] = {}
    nps_rows: dict[int, int] = {}
    keys = (F.csat, F.nps) if _long(q) else (_plain(session, F.csat), _plain(session, F.nps))
    for csat, nps, n in session.execute(
            select(*keys, func.count()).where(*_filter_conditions(q),
                                              _in(_plain(session, F.closed_at), q) if _long(q) else closed_in,
                                              or_(F.csat.is_not(None), F.nps.is_not(None)))
            .group_by(*keys)):
        if csat is not None:
            csat_rows[csat] = csat_rows.get(csat, 0) + int(n)
        if nps is not None:
            nps_rows[nps] = nps_rows.get(nps, 0) + int(n)
    csat_n = sum(csat_rows.values())
    csat_avg = round(sum(k * v for k, v in csat_rows.items()) / csat_n, 2) if csat_n else None
    nps_n = sum(nps_rows.values())
    promoters = sum(v for k, v in nps_rows.items() if k >= 9)
    detractors = sum(v for k, v in nps_rows.items() if k <= 6)
    fb_scope = _filter_conditions(q) + ([] if q.process else [F.kind == "feedback"])
    feedback = {str(k or "unspecified"): int(v) for k, v in session.execute(
        select(F.feedback_type, func.count()).where(*fb_scope, received_in).group_by(F.feedback_type)).all()}

    # --- Pareto (from pass 1; NULL sorts as the database would) and root causes
    nulls_first = _dialect(session) == "sqlite"
    pareto, running = [], 0
    for category, n in sorted(by_category.items(),
                              key=lambda kv: (-kv[1], (kv[0] is not None) if nulls_first else (kv[0] is None),
                                              kv[0] or "")):
        running += n
        pareto.append({"category": category or "untriaged", "count": int(n), "share": _share(n, received),
                       "cumulative": _share(running, received)})
    root = F.root_cause if _long(q) else _plain(session, F.root_cause)
    root_stmt = (select(root, func.count()).where(*scope, _in(_plain(session, F.received_at), q) if _long(q)
                                                  else received_in, root.is_not(None))
                 .group_by(root).order_by(func.count().desc(), root).limit(10))
    root_causes = [{"root_cause": rc, "count": int(n)} for rc, n in session.execute(root_stmt).all()]

    bottlenecks = _step_times(session, q, scope)
    ack_within_rate = _share(ack_within, ack_eligible_n)
    return {
        "period": {"from": q.from_date.isoformat(), "to": q.to_date.isoformat(), "timezone": q.tz_name,
                   "start": q.start.isoformat(), "end": q.end.isoformat(), "granularity": q.bucket},
        "filters": q.filters(),
        "complaints": {"received": received, "closed": closed, "open_at_end": open_at_end, "rejected": rejected,
                       "cancelled": cancelled, "trend": list(trend.values())},
        "acknowledge": {"count": ack_count, "median_hours": _hours(ack_p[0]), "p90_hours": _hours(ack_p[1]),
                        "target_hours": ACK_TARGET_S // 3600, "eligible": ack_eligible_n, "within_target": ack_within,
                        "share_within_target": ack_within_rate},
        "close": {"count": closed, "median_hours": _hours(close_p[0]), "p90_hours": _hours(close_p[1]),
                  "median_days": None if close_p[0] is None else round(close_p[0] / 86400, 2),
                  "p90_days": None if close_p[1] is None else round(close_p[1] / 86400, 2)},
        "actions": {"due_in_period": a_total, "done": a_done, "done_on_time": a_on_time, "open": a_total - a_done,
                    "overdue": a_overdue, "on_time_rate": _share(a_on_time, a_done),
                    "backlog_open": backlog_open, "backlog_overdue": backlog_overdue},
        "effectiveness": {"checked": checked, "effective_first_check": effective_first,
                          "share_effective_first_check": _share(effective_first, checked),
                          "rca_loops_total": loops_total, "rca_loops_avg": round(loops_total / checked, 2)
                          if checked else None, "reopened": reopened, "recurrence_base": rec_base,
                          "recurrences": recurrences, "recurrence_rate": _share(recurrences, rec_base)},
        "satisfaction": {
            "csat": {"count": csat_n, "average": csat_avg,
                     "distribution": {str(k): int(csat_rows.get(k, 0)) for k in range(1, 6)}},
            "nps": {"count": nps_n, "promoters": promoters, "passives": nps_n - promoters - detractors,
                    "detractors": detractors,
                    "score": round(100 * (promoters - detractors) / nps_n, 1) if nps_n else None,
                    "distribution": {str(k): int(nps_rows.get(k, 0)) for k in range(0, 11)}},
            "feedback": {"total": sum(feedback.values()), "by_type": feedback},
        },
        "pareto": pareto,
        "root_causes": root_causes,
        "bottlenecks": bottlenecks,
    }


def satisfaction_trend(db: Any, q: KpiQuery) -> list[dict[str, Any]]:
    """Monthly CSAT average and NPS (by local month of closure) for the ISO §9.1.2 section."""
    F = ComplaintFact
    months: dict[date, dict[str, Any]] = {}
    with db.read() as session:
        day = _local_day(session, F.closed_at, q).label("day")
        rows = session.execute(select(
            day, func.count(F.csat), func.sum(F.csat), func.count(F.nps),
            func.sum(case((F.nps >= 9, 1), else_=0)), func.sum(case((F.nps <= 6, 1), else_=0)),
        ).where(*_filter_conditions(q), _in(F.closed_at, q), or_(F.csat.is_not(None), F.nps.is_not(None)))
            .group_by(day)).all()
    for number, csat_n, csat_sum, nps_n, pro, det in rows:
        m = months.setdefault(_day(number).replace(day=1), [0, 0, 0, 0, 0])
        for i, v in enumerate((csat_n, csat_sum, nps_n, pro, det)):
            m[i] += int(v or 0)
    out = []
    for month in sorted(months):
        csat_n, csat_sum, nps_n, pro, det = months[month]
        out.append({"month": month.strftime("%Y-%m"), "csat_count": csat_n,
                    "csat_average": round(csat_sum / csat_n, 2) if csat_n else None, "nps_count": nps_n,
                    "nps": round(100 * (pro - det) / nps_n, 1) if nps_n else None})
    return out


def filter_options(db: Any) -> dict[str, list[str]]:
    """Distinct processes, categories and severities for the filter form."""
    with db.read() as session:
        return {name: [v for v in _distinct(session, column) if v]
                for name, column in (("process", "process_key"), ("category", "category"), ("severity", "severity"))}


def _distinct(session: Session, column: str) -> list[str]:
    """Distinct non-NULL values of a complaint_fact column that leads an index, in order: a loose index
    scan (one index seek per distinct value) instead of reading all 100,000 rows."""
    table = ComplaintFact.__table__
    col = table.c[column]  # KeyError for anything but a real column: never user text
    later = table.alias("later")
    seed = select(func.min(col).label("v")).cte("d", recursive=True)
    step = select(select(func.min(later.c[column])).where(later.c[column] > seed.c.v).scalar_subquery())
    distinct_values = seed.union_all(step.where(seed.c.v.is_not(None)))
    return list(session.scalars(select(distinct_values.c.v).where(distinct_values.c.v.is_not(None))))


# ---------------------------------------------------------------------------------------- listings

COMPLAINT_COLUMNS = ["reference", "process_key", "kind", "status", "instance_status", "received_at",
                     "acknowledged_at", "closed_at", "category", "severity", "product", "customer", "valid",
                     "rca_loops", "effective_first_check", "effective", "root_cause", "csat", "nps", "instance_id"]
ACTION_COLUMNS = ["reference", "action_id", "round", "what", "owner", "due_on", "done_on", "on_time", "overdue",
                  "result", "effective", "instance_id"]
SURVEY_COLUMNS = ["reference", "process_key", "kind", "closed_at", "csat", "nps", "nps_group", "survey_status",
                  "feedback_type", "product", "customer", "category", "instance_id"]


def complaint_rows(db: Any, q: KpiQuery, limit: int | None = None) -> list[dict[str, Any]]:
    F = ComplaintFact
    with db.read() as session:
        stmt = select(F).where(*case_scope(q), _in(F.received_at, q)).order_by(F.received_at, F.instance_id)
        rows = session.scalars(stmt.limit(limit) if limit else stmt).all()
        return [{c: getattr(r, c) for c in COMPLAINT_COLUMNS} for r in rows]


def action_rows(db: Any, q: KpiQuery, *, now: datetime | None = None) -> list[dict[str, Any]]:
    A, F = ActionFact, ComplaintFact
    today = (now or clock.now()).astimezone(q.tz).date()
    with db.read() as session:
        rows = session.execute(select(A, F.reference).join(F, F.instance_id == A.instance_id).where(
            *case_scope(q), A.due_on >= q.from_date, A.due_on <= q.to_date)
            .order_by(A.due_on, F.reference, A.action_id)).all()
        out = []
        for a, reference in rows:
            out.append({"reference": reference, "action_id": a.action_id, "round": a.round, "what": a.what,
                        "owner": a.owner, "due_on": a.due_on, "done_on": a.done_on,
                        "on_time": None if a.done_on is None or a.due_on is None else a.done_on <= a.due_on,
                        "overdue": a.done_on is None and a.due_on is not None and a.due_on < today,
                        "result": a.result, "effective": a.effective, "instance_id": a.instance_id})
        return out


def survey_rows(db: Any, q: KpiQuery) -> list[dict[str, Any]]:
    F = ComplaintFact
    with db.read() as session:
        rows = session.scalars(select(F).where(*_filter_conditions(q), _in(F.closed_at, q),
                                               or_(F.csat.is_not(None), F.nps.is_not(None)))
                               .order_by(F.closed_at, F.instance_id)).all()
        out = []
        for r in rows:
            group = None if r.nps is None else "promoter" if r.nps >= 9 else "detractor" if r.nps <= 6 else "passive"
            row = {c: getattr(r, c, None) for c in SURVEY_COLUMNS if c != "nps_group"}
            row["nps_group"] = group
            out.append({c: row[c] for c in SURVEY_COLUMNS})
        return out


def nonconformity_report(db: Any, q: KpiQuery, limit: int = 500) -> dict[str, Any]:
    """ISO 9001 §10.2: each valid complaint / nonconformity received in the period with its actions,
    owners, dates, effectiveness and audit trail."""
    F, A = ComplaintFact, ActionFact
    scope = _filter_conditions(q)
    if not q.process:
        scope.append(F.kind.in_(("complaint", "nonconformity")))
    with db.read() as session:
        base = [*scope, _in(F.received_at, q), or_(F.valid.is_(None), F.valid.is_(True))]
        total = session.scalar(select(func.count()).select_from(F).where(*base)) or 0
        facts = session.scalars(select(F).where(*base).order_by(F.received_at, F.instance_id).limit(limit)).all()
        ids = [f.instance_id for f in facts]
        actions: dict[str, list[dict[str, Any]]] = {}
        audit: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(ids), 400):
            chunk = ids[i:i + 400]
            for a in session.scalars(select(A).where(A.instance_id.in_(chunk)).order_by(A.round, A.action_id)):
                actions.setdefault(a.instance_id, []).append(
                    {"action_id": a.action_id, "round": a.round, "what": a.what, "owner": a.owner, "due_on": a.due_on,
                     "done_on": a.done_on, "result": a.result, "effective": a.effective})
            for e in session.scalars(select(AuditEvent).where(AuditEvent.instance_id.in_(chunk))
                                     .order_by(AuditEvent.id)):
                audit.setdefault(e.instance_id or "", []).append(
                    {"at": e.at, "actor": e.actor, "type": e.type, "task": (e.payload or {}).get("task")})
        items = [{**{c: getattr(f, c) for c in COMPLAINT_COLUMNS}, "actions": actions.get(f.instance_id, []),
                  "audit": audit.get(f.instance_id, [])} for f in facts]
    return {"total": total, "shown": len(items), "items": items}


def as_dict(q: KpiQuery) -> dict[str, Any]:
    return asdict(q)
