"""KPI service (no Flask, no SQL): figures for the dashboard, the API, exports and the ISO 9001 report.

The figures are SQL aggregates over the fact tables (storage/kpi_facts.py, kept by
storage/kpi_upkeep.py) read by the query functions of storage/kpi_queries.py; only aggregate rows (per
category, per step, per trend bucket, per CSAT/NPS pair), the two rows around each percentile, and the
listings of exports and the evidence report reach Python. The process-specific rules (which process is
which kind of case, what counts as acknowledged, closed, rejected) are in engine/kpi_rules.py and are
passed to the queries.

Reading never writes: the facts and their rollups are brought up to date by ``refresh_facts``, which
the scheduler pass runs (engine/scheduler.py); tests and ``pdcaflow demo`` call it before reading figures.

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

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import EngineError
from engine.kpi_rules import ACK_TARGET_S, RULES, facts_from_instance, task_fact, with_actual_work
from storage import kpi_queries as kq
from storage import kpi_rollups, kpi_upkeep
from storage.db import Database

DEFAULT_DAYS = 90
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


# ---------------------------------------------------------------------------------------- refresh

def refresh_facts(db: Database, *, full: bool = False, now: datetime | None = None) -> int:
    """Bring the KPI fact tables up to date from the instances with audit events since the last refresh
    (all instances with `full`); returns how many tracked instances were rewritten. A read only, on
    SQLite, when nothing changed. The scheduler pass runs it; requests never do (a GET must not write)."""
    now = now or clock.now()
    if not full:
        with db.read() as session:
            if not kpi_upkeep.needs_refresh(session, RULES):
                return 0
        _recount_rollups_unlocked(db)
    try:
        with db.write() as session:
            state = kpi_upkeep.lock_refresh_state(session)
            top = kpi_upkeep.last_audit_id(session)
            count = 0
            rolled = not full and kpi_rollups.rollup_current(session, RULES)  # else rebuilt once at the end
            for ids in kpi_upkeep.chunks(kpi_upkeep.changed_instances(session, state, full=full)):
                facts, actions = [], []
                task_rows = kpi_upkeep.task_rows(session, ids)
                tasks_of: dict[str, list[Any]] = {}
                for t in task_rows:
                    tasks_of.setdefault(t.instance_id, []).append(t)
                for r in kpi_upkeep.instance_rows(session, ids):
                    fact, acts = facts_from_instance(r.id, r.process_key, r.status, dict(r.data or {}), r.started_at)
                    if fact is not None:
                        facts.append(fact)
                        actions.extend(with_actual_work(acts, tasks_of.get(r.id, [])))
                tasks = [task_fact(t) for t in task_rows]
                kpi_upkeep.replace_facts(session, ids, facts, actions, tasks, RULES if rolled else None)
                count += len(facts)
            if not rolled:
                kpi_rollups.rebuild_complaint_rollup(session, RULES)
            kpi_upkeep.mark_refreshed(state, top, now)
            return count
    except IntegrityError:
        return 0  # another process created the cursor row at the same moment; it refreshed for us


def _recount_rollups_unlocked(db: Database) -> None:
    """After an upgrade or a change of the rules the rollups are counted again from every fact: tens
    of seconds at 100,000 complaints. Counted in a read transaction, that holds no write lock (on SQLite
    every other writer would wait, past its 30 s busy timeout); the write then only swaps the rows in.
    If a refresh changed the facts in between, nothing is written: the refresh recounts inside its own
    transaction, as it always did."""
    with db.read() as session:
        if kpi_rollups.rollup_current(session, RULES):
            return
        seen = kpi_upkeep.refresh_mark(session)
        counted = kpi_rollups.count_rollups(session, RULES)
    try:
        with db.write() as session:
            state = kpi_upkeep.lock_refresh_state(session)
            if kpi_upkeep.refresh_mark(session, state) == seen and not kpi_rollups.rollup_current(session, RULES):
                kpi_rollups.write_rollups(session, counted, RULES)
    except IntegrityError:
        pass  # another process created the cursor row at the same moment


def refreshed_at(db: Database) -> datetime | None:
    """When the facts were last refreshed (None: never), so readers can tell how fresh the figures are."""
    with db.read() as session:
        return kpi_upkeep.refreshed_at(session)


# ---------------------------------------------------------------------------------------- helpers

def fact_query(q: KpiQuery) -> kq.FactQuery:
    """The storage form of a query: UTC instants, local dates, filters and the rules of engine/kpi_rules.py."""
    return kq.FactQuery(q.start, q.end, q.from_date, q.to_date, RULES, **q.filters())


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


def _bucket_instants(q: KpiQuery) -> list[datetime]:
    """Edges of the trend buckets (clipped to the period) as UTC instants of local midnights (exact across DST)."""
    edges = [max(b, q.from_date) for b in _buckets(q)] + [q.to_date + timedelta(days=1)]
    return [datetime.combine(d, time(), q.tz).astimezone(timezone.utc) for d in edges]


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 2)


def _score_counts(pairs: list[tuple[int | None, int | None, int]]) -> tuple[dict[int, int], dict[int, int]]:
    """({CSAT score: answers}, {NPS answer: answers}) of `kq.score_pairs` rows."""
    csat_rows: dict[int, int] = {}
    nps_rows: dict[int, int] = {}
    for csat, nps, n in pairs:
        if csat is not None:
            csat_rows[csat] = csat_rows.get(csat, 0) + n
        if nps is not None:
            nps_rows[nps] = nps_rows.get(nps, 0) + n
    return csat_rows, nps_rows


def _nps_counts(nps_rows: dict[int, int]) -> tuple[int, int, int]:
    """(answers, promoters, detractors) of {NPS answer: answers}."""
    return (sum(nps_rows.values()), sum(v for k, v in nps_rows.items() if k >= RULES.promoter_min),
            sum(v for k, v in nps_rows.items() if k <= RULES.detractor_max))


def _nps_score(n: int, promoters: int, detractors: int) -> float | None:
    return round(100 * (promoters - detractors) / n, 1) if n else None


def _nps_group(nps: int | None) -> str | None:
    if nps is None:
        return None
    return "promoter" if nps >= RULES.promoter_min else "detractor" if nps <= RULES.detractor_max else "passive"


# ---------------------------------------------------------------------------------------- the figures

def compute(db: Database, q: KpiQuery, *, now: datetime | None = None) -> dict[str, Any]:
    """All dashboard figures for the query, as JSON-ready values (reads the facts as last refreshed)."""
    now = now or clock.now()
    with db.read() as session:
        return _compute(session, q, now)


def _period_today(q: KpiQuery, now: datetime) -> date:
    """The local date actions count as overdue before: today, or the period's last day if it ended earlier."""
    return min(now, q.end - timedelta(seconds=1)).astimezone(q.tz).date()


def _compute(session: Session, q: KpiQuery, now: datetime) -> dict[str, Any]:
    """The figures in a few passes, each over one covering-index range (see storage/kpi_queries.py)."""
    fq = fact_query(q)
    today = _period_today(q, now)
    instants = _bucket_instants(q)
    trend = {b: {"start": b.isoformat(), "received": 0, "closed": 0} for b in _buckets(q)}

    # --- pass 1, complaints received in the period: volume, acknowledgement, Pareto, recurrence
    received, ack_count, rejected, cancelled, ack_eligible_n, ack_within, rec_base = kq.received_figures(
        session, fq, now)
    by_category = kq.received_by_category(session, fq)
    for bucket, n in zip(trend.values(), kq.trend_counts(session, fq, "received_at", instants), strict=True):
        bucket["received"] = n
    recurrences = kq.recurrences(session, fq)
    ack_p = kq.percentiles(session, fq, "ack", ack_count)
    open_at_end = kq.open_at_end(session, fq)

    # --- pass 2, complaints closed in the period: count, effectiveness, trend; then their close times
    closed, close_count, checked, effective_first, loops_total, reopened = kq.closed_figures(session, fq)
    for bucket, n in zip(trend.values(), kq.trend_counts(session, fq, "closed_at", instants), strict=True):
        bucket["closed"] = n
    close_p = kq.percentiles(session, fq, "close", close_count)

    # --- corrective actions (due in the period; backlog today)
    real_today = now.astimezone(q.tz).date()
    a_total, a_done, a_on_time, a_overdue, backlog_open, backlog_overdue = kq.action_counts(
        session, fq, today, real_today)

    # --- satisfaction: one pass over the (CSAT, NPS) pairs
    csat_rows, nps_rows = _score_counts(kq.score_pairs(session, fq))
    csat_n = sum(csat_rows.values())
    csat_avg = round(sum(k * v for k, v in csat_rows.items()) / csat_n, 2) if csat_n else None
    nps_n, promoters, detractors = _nps_counts(nps_rows)
    feedback = {str(k or "unspecified"): v for k, v in kq.feedback_by_type(session, fq).items()}

    # --- Pareto (from pass 1; NULL sorts as the database would) and root causes
    nulls_first = kq.nulls_sort_first(session)
    pareto, running = [], 0
    for category, n in sorted(by_category.items(),
                              key=lambda kv: (-kv[1], (kv[0] is not None) if nulls_first else (kv[0] is None),
                                              kv[0] or "")):
        running += n
        pareto.append({"category": category or "untriaged", "count": int(n), "share": _share(n, received),
                       "cumulative": _share(running, received)})
    root_causes = [{"root_cause": rc, "count": n} for rc, n in kq.root_causes(session, fq)]

    bottlenecks = sorted(
        ({"process_key": key, "spec_id": spec, "name": s["name"], "completed": s["completed"],
          "avg_hours": _hours(s["sum"] / s["counted"]) if s["counted"] else None, "max_hours": _hours(s["max"]),
          "open": s["open"]} for (key, spec), s in kq.step_times(session, fq).items()),
        key=lambda s: (-(s["avg_hours"] or 0), s["process_key"], s["spec_id"]))
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
                  "median_days": _days(close_p[0]), "p90_days": _days(close_p[1])},
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
                    "score": _nps_score(nps_n, promoters, detractors),
                    "distribution": {str(k): int(nps_rows.get(k, 0)) for k in range(0, 11)}},
            "feedback": {"total": sum(feedback.values()), "by_type": feedback},
        },
        "pareto": pareto,
        "root_causes": root_causes,
        "bottlenecks": bottlenecks,
    }


# ---------------------------------------------------------------------------------------- at a glance

# the dashboard's tiles: (key, label, unit, the direction that is an improvement)
TILES = (("received", "Complaints received", "", "down"),
         ("open", "Open at the end of the period", "", "down"),
         ("overdue_actions", "Overdue actions", "", "down"),
         ("median_close_days", "Median time to close", " d", "down"),
         ("effective_first_check", "Effective at the first check", " %", "up"),
         ("nps", "NPS", "", "up"))


def previous_period(q: KpiQuery) -> KpiQuery:
    """The period of the same number of local days just before q's, with the same filters."""
    days = (q.to_date - q.from_date).days + 1
    return replace(q, from_date=q.from_date - timedelta(days=days), to_date=q.from_date - timedelta(days=1))


def headline(k: dict[str, Any]) -> dict[str, float | None]:
    """The tiles' figures of a `compute` result (effectiveness in per cent)."""
    effective = k["effectiveness"]["share_effective_first_check"]
    return {"received": k["complaints"]["received"], "open": k["complaints"]["open_at_end"],
            "overdue_actions": k["actions"]["overdue"], "median_close_days": k["close"]["median_days"],
            "effective_first_check": None if effective is None else round(100 * effective, 1),
            "nps": k["satisfaction"]["nps"]["score"]}


def _headline(session: Session, q: KpiQuery, now: datetime) -> dict[str, float | None]:
    """`headline` of the query without the rest of `compute`: the few statements the tiles need."""
    fq = fact_query(q)
    received = kq.received_figures(session, fq, now)[0]
    _closed, close_count, checked, effective_first, _loops, _reopened = kq.closed_figures(session, fq)
    today = _period_today(q, now)
    nps_n, promoters, detractors = kq.nps_counts(session, fq)
    share = _share(effective_first, checked)
    return {"received": received, "open": kq.open_at_end(session, fq),
            "overdue_actions": kq.action_counts(session, fq, today, today, with_backlog=False)[3],
            "median_close_days": _days(kq.percentiles(session, fq, "close", close_count, ps=(0.5,))[0]),
            "effective_first_check": None if share is None else round(100 * share, 1),
            "nps": _nps_score(nps_n, promoters, detractors)}


def glance(db: Database, q: KpiQuery, k: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's tiles: each headline figure of `k` (compute's result for q) beside the same figure
    over the previous period of the same length, and the change (per-cent figures in points).
    `trend` says whether the change is `better`, `worse` or the `same` (None: nothing to compare)."""
    now = now or clock.now()
    try:
        before_q: KpiQuery | None = previous_period(q)
        with db.read() as session:
            before = _headline(session, before_q, now)  # type: ignore[arg-type]
    except OverflowError:  # a period starting near year 1 has no previous period
        before_q, before = None, {}
    now_figures, tiles = headline(k), []
    for key, label, unit, better in TILES:
        value, previous = now_figures[key], before.get(key)
        change = None if value is None or previous is None else round(value - previous, 2)
        trend = None if change is None else "same" if change == 0 else (
            "better" if (change > 0) == (better == "up") else "worse")
        tiles.append({"key": key, "label": label, "unit": unit, "value": value, "previous": previous,
                      "change": change, "trend": trend})
    return {"previous": None if before_q is None else {"from": before_q.from_date.isoformat(),
                                                       "to": before_q.to_date.isoformat()},
            "tiles": tiles}


def satisfaction_trend(db: Database, q: KpiQuery) -> list[dict[str, Any]]:
    """Monthly CSAT average and NPS (by local month of closure) for the ISO §9.1.2 section."""
    months: dict[date, list[int]] = {}
    with db.read() as session:
        rows = kq.scores_by_local_day(session, fact_query(q), _offset_changes(q.tz, q.start, q.end))
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


def filter_options(db: Database) -> dict[str, list[str]]:
    """Distinct processes, categories and severities for the filter form."""
    with db.read() as session:
        return {name: [v for v in kq.distinct_values(session, column) if v]
                for name, column in (("process", "process_key"), ("category", "category"), ("severity", "severity"))}


# ---------------------------------------------------------------------------------------- listings

COMPLAINT_COLUMNS = ["reference", "process_key", "kind", "status", "instance_status", "received_at",
                     "acknowledged_at", "closed_at", "category", "severity", "product", "customer", "valid",
                     "rca_loops", "effective_first_check", "effective", "root_cause", "csat", "nps", "instance_id"]
ACTION_COLUMNS = ["reference", "action_id", "round", "what", "owner", "due_on", "done_on", "on_time", "overdue",
                  "result", "effective", "instance_id"]
SURVEY_COLUMNS = ["reference", "process_key", "kind", "closed_at", "csat", "nps", "nps_group", "survey_status",
                  "feedback_type", "product", "customer", "category", "instance_id"]


def complaint_rows(db: Database, q: KpiQuery, limit: int | None = None) -> list[dict[str, Any]]:
    with db.read() as session:
        return [{c: getattr(r, c) for c in COMPLAINT_COLUMNS} for r in kq.received_facts(session, fact_query(q), limit)]


def action_rows(db: Database, q: KpiQuery, *, now: datetime | None = None) -> list[dict[str, Any]]:
    today = (now or clock.now()).astimezone(q.tz).date()
    with db.read() as session:  # rows are read inside the session: it expires them on leaving
        return [{"reference": reference, "action_id": a.action_id, "round": a.round, "what": a.what,
                 "owner": a.owner, "due_on": a.due_on, "done_on": a.done_on,
                 "on_time": None if a.done_on is None or a.due_on is None else a.done_on <= a.due_on,
                 "overdue": a.done_on is None and a.due_on is not None and a.due_on < today,
                 "result": a.result, "effective": a.effective, "instance_id": a.instance_id}
                for a, reference in kq.actions_due(session, fact_query(q))]


def survey_rows(db: Database, q: KpiQuery) -> list[dict[str, Any]]:
    out = []
    with db.read() as session:
        for r in kq.scored_facts(session, fact_query(q)):
            row = {c: getattr(r, c, None) for c in SURVEY_COLUMNS if c != "nps_group"}
            row["nps_group"] = _nps_group(r.nps)
            out.append({c: row[c] for c in SURVEY_COLUMNS})
    return out


def nonconformity_report(db: Database, q: KpiQuery, limit: int = 500) -> dict[str, Any]:
    """ISO 9001 §10.2: each valid complaint / nonconformity received in the period with its actions,
    owners, dates, effectiveness and audit trail."""
    with db.read() as session:
        total, facts = kq.report_facts(session, fact_query(q), limit)
        actions: dict[str, list[dict[str, Any]]] = {}
        audit: dict[str, list[dict[str, Any]]] = {}
        for chunk in kpi_upkeep.chunks([f.instance_id for f in facts]):
            for a in kq.actions_of(session, chunk):
                actions.setdefault(a.instance_id, []).append(
                    {"action_id": a.action_id, "round": a.round, "what": a.what, "owner": a.owner, "due_on": a.due_on,
                     "done_on": a.done_on, "result": a.result, "effective": a.effective})
            for e in kq.audit_of(session, chunk):
                p = e.payload or {}
                entry = {"at": e.at, "actor": e.actor, "type": e.type, "task": p.get("task")}
                if e.type in ("assign", "due_changed"):  # the evidence of a reassignment: whom / when, before and after
                    entry.update({"from": p.get("from"), "to": p.get("to")})
                audit.setdefault(e.instance_id or "", []).append(entry)
        items = [{**{c: getattr(f, c) for c in COMPLAINT_COLUMNS}, "actions": actions.get(f.instance_id, []),
                  "audit": audit.get(f.instance_id, [])} for f in facts]
    return {"total": total, "shown": len(items), "items": items}


def as_dict(q: KpiQuery) -> dict[str, Any]:
    return asdict(q)
