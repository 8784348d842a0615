"""The KPI rollups' counting (storage/kpi_facts.py has the tables): actions per due date, complaint
figures per UTC day of receipt / closure with value buckets for exact percentiles, completed steps per
day. A refresh recounts only the days its changed facts count in (storage/kpi_upkeep.py); a change of
the rules or of ROLLUP_VERSION rebuilds them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

if TYPE_CHECKING:
    from storage.kpi_queries import KpiRules
from storage.kpi_facts import CHUNK, ActionFact, ActionRollup, ComplaintFact, ComplaintRollup, StepRollup, TaskFact


def _rollup_rows(session: Session, where: list[Any]) -> Any:
    A = ActionFact
    return session.execute(select(A.kind, A.process_key, A.instance_status, A.due_on, func.count(),
                                  func.sum(case((A.done_on.is_not(None), 1), else_=0)),
                                  func.sum(case((A.done_on <= A.due_on, 1), else_=0)))
                           .where(*where, A.kind.is_not(None), A.due_on.is_not(None))
                           .group_by(A.kind, A.process_key, A.instance_status, A.due_on))


def roll_actions(session: Session, instance_ids: list[str], new_actions: list[dict[str, Any]]) -> None:
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



# ---------------------------------------------------------------------------------------- complaint_rollup

ROLLUP_VERSION = 1  # raise when _contributions changes: the next refresh rebuilds the rollup
_ROLLUP_COLUMNS = (ComplaintFact.kind, ComplaintFact.process_key, ComplaintFact.instance_status,
                   ComplaintFact.received_at, ComplaintFact.closed_at, ComplaintFact.ack_seconds,
                   ComplaintFact.close_seconds, ComplaintFact.valid, ComplaintFact.status, ComplaintFact.category,
                   ComplaintFact.product, ComplaintFact.root_cause, ComplaintFact.effective_first_check,
                   ComplaintFact.rca_loops, ComplaintFact.csat, ComplaintFact.nps)


def closed_earlier(fact: Any = ComplaintFact) -> Any:
    """SQL: another case of the same kind, category and product was closed before `fact` was received
    (what makes a valid case a recurrence); one index seek per case (ix_complaint_fact_first_closed)."""
    earlier = aliased(ComplaintFact)
    return exists().where(earlier.kind == fact.kind, earlier.category == fact.category,
                          earlier.product == fact.product, earlier.instance_id != fact.instance_id,
                          earlier.closed_at < fact.received_at)


def _complaint_rows(*where: Any) -> Any:
    return select(*_ROLLUP_COLUMNS, closed_earlier().label("recurs")).where(*where)
RollupKey = tuple[str, str, str, str, date, str, "str | None"]  # basis, kind, process, status, day, measure, value


# value buckets of the acknowledgement / close times (seconds) counted per day, so a percentile's rank is
# found in the counts and only its bucket's values are read: below 0, [0, 1), then four per doubling
SECOND_EDGES = (0.0, *(2 ** (i / 4) for i in range(4 * 40)))


def seconds_bucket(seconds: float) -> int:
    """The bucket of a time: values in [SECOND_EDGES[b - 1], SECOND_EDGES[b]) are in bucket b."""
    return bisect_right(SECOND_EDGES, seconds)


def rollup_stamp(rules: KpiRules) -> str:
    """What the rollup's counts depend on besides the facts: its version and the rules it applies."""
    return f"v{ROLLUP_VERSION}|{rules.rejected_status}|{rules.ack_target_s}"


def utc_day(t: datetime) -> date:
    return t.astimezone(timezone.utc).date()


def _contributions(f: Any, rules: KpiRules) -> Iterator[tuple[str, date, str, str | None, int]]:
    """(basis, UTC day, measure, value, n) that one fact adds to complaint_rollup: the counts behind
    storage/kpi_queries.py's figures (``received_figures``, ``closed_figures``, ``open_at_end``, trends,
    Pareto, root causes, satisfaction), under the same names."""
    day = utc_day(f.received_at)
    yield "received", day, "n", None, 1
    if f.ack_seconds is not None:
        yield "received", day, "acked", None, 1
        yield "received", day, "ack_bucket", str(seconds_bucket(f.ack_seconds)), 1
        if f.ack_seconds <= rules.ack_target_s:
            yield "received", day, "ack_within", None, 1
    if f.valid is False or f.status == rules.rejected_status:
        yield "received", day, "rejected", None, 1
    if f.category is not None and f.product is not None and f.valid is not False:
        yield "received", day, "rec_base", None, 1
        if f.recurs:
            yield "received", day, "recurrence", None, 1
    yield "received", day, "category", f.category, 1
    if f.root_cause is not None:
        yield "received", day, "root_cause", f.root_cause, 1
    if f.closed_at is None:
        return
    day = utc_day(f.closed_at)
    yield "closed", day, "n", None, 1
    if f.close_seconds is not None:
        yield "closed", day, "timed", None, 1
        yield "closed", day, "close_bucket", str(seconds_bucket(f.close_seconds)), 1
    if f.effective_first_check is not None:
        yield "closed", day, "checked", None, 1
        yield "closed", day, "loops", None, f.rca_loops or 0
        if f.effective_first_check:
            yield "closed", day, "effective_first", None, 1
        if (f.rca_loops or 0) > 0:
            yield "closed", day, "reopened", None, 1
    if f.closed_at < f.received_at:  # bad data: open_at_end cannot be read from the rollup then
        yield "closed", day, "before_received", None, 1
    if f.csat is not None or f.nps is not None:
        yield "closed", day, "score", f"{'' if f.csat is None else f.csat}:{'' if f.nps is None else f.nps}", 1


def _add(counts: dict[RollupKey, int], rows: Any, rules: KpiRules, keep: set[tuple[str, date]] | None) -> None:
    for f in rows:
        for basis, day, measure, value, n in _contributions(f, rules):
            if keep is None or (basis, day) in keep:
                key = (basis, f.kind, f.process_key, f.instance_status, day, measure, value)
                counts[key] = counts.get(key, 0) + n


def _insert_rollup(session: Session, counts: dict[RollupKey, int]) -> None:
    rows = [{"basis": b, "kind": k, "process_key": p, "instance_status": st, "day": d, "measure": m, "value": v,
             "n": n} for (b, k, p, st, d, m, v), n in counts.items() if n]
    for i in range(0, len(rows), 5000):
        session.execute(insert(ComplaintRollup), rows[i:i + 5000])


def fact_days(facts: list[dict[str, Any]]) -> set[tuple[str, date]]:
    """The (basis, day) rollup rows the facts count in."""
    out = set()
    for f in facts:
        out.add(("received", utc_day(f["received_at"])))
        if f["closed_at"] is not None:
            out.add(("closed", utc_day(f["closed_at"])))
    return out


def _day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as [first, last + 1) runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and runs[-1][1] == d:
            runs[-1] = (runs[-1][0], d + timedelta(days=1))
        else:
            runs.append((d, d + timedelta(days=1)))
    return runs


def utc_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def recount_rollup_days(session: Session, days: set[tuple[str, date]], rules: KpiRules) -> None:
    """Recount the rollup rows of these (basis, UTC day)s from complaint_fact, then their months from the
    days: the refresh calls it with the days of the replaced facts, before and after (a day holds a few
    hundred facts at most)."""
    R, F = ComplaintRollup, ComplaintFact
    for basis, column in (("received", F.received_at), ("closed", F.closed_at)):
        wanted = sorted(d for b, d in days if b == basis)
        for i in range(0, len(wanted), CHUNK):
            part = wanted[i:i + CHUNK]
            session.execute(delete(R).where(R.basis == basis, R.day.in_(part)))
            counts: dict[RollupKey, int] = {}
            ranges = [and_(column >= utc_midnight(lo), column < utc_midnight(hi)) for lo, hi in _day_runs(part)]
            _add(counts, session.execute(_complaint_rows(or_(*ranges))), rules,
                 {(basis, d) for d in part})
            _insert_rollup(session, counts)
    months = {(basis, d.replace(day=1)) for basis, d in days}
    for basis, month in sorted(months):
        session.execute(delete(R).where(R.basis == f"{basis}/month", R.day == month))
        following = (month + timedelta(days=31)).replace(day=1)
        counts = {}
        for row in session.execute(select(R.kind, R.process_key, R.instance_status, R.measure, R.value, R.n).where(
                R.basis == basis, R.day >= month, R.day < following)):
            key = (f"{basis}/month", row.kind, row.process_key, row.instance_status, month, row.measure, row.value)
            counts[key] = counts.get(key, 0) + row.n
        _insert_rollup(session, counts)


def _by_month(counts: dict[RollupKey, int]) -> dict[RollupKey, int]:
    out: dict[RollupKey, int] = {}
    for (basis, kind, process_key, status, day, measure, value), n in counts.items():
        key = (f"{basis}/month", kind, process_key, status, day.replace(day=1), measure, value)
        out[key] = out.get(key, 0) + n
    return out


@dataclass
class CountedRollups:
    """complaint_rollup's and step_rollup's rows counted from every fact (`count_rollups`), to be written
    by `write_rollups`, possibly in a later transaction."""

    complaints: dict[RollupKey, int]
    steps: list[dict[str, Any]]


def count_rollups(session: Session, rules: KpiRules) -> CountedRollups:
    """Count complaint_rollup from all of complaint_fact and step_rollup from task_fact (reads only)."""
    counts: dict[RollupKey, int] = {}
    _add(counts, session.execute(_complaint_rows().execution_options(yield_per=5000)), rules, None)
    return CountedRollups({**counts, **_by_month(counts)}, _step_rows(session, []))


def write_rollups(session: Session, counted: CountedRollups, rules: KpiRules) -> None:
    """Replace complaint_rollup and step_rollup with `counted` and stamp them with the rules."""
    session.execute(delete(ComplaintRollup))
    _insert_rollup(session, counted.complaints)
    session.execute(delete(StepRollup))
    for i in range(0, len(counted.steps), 5000):
        session.execute(insert(StepRollup), counted.steps[i:i + 5000])
    session.execute(insert(ComplaintRollup), [{"basis": "meta", "kind": "", "process_key": "", "instance_status": "",
                                               "day": date(1970, 1, 1), "measure": "stamp",
                                               "value": rollup_stamp(rules), "n": 0}])


def rebuild_complaint_rollup(session: Session, rules: KpiRules) -> None:
    """Recount complaint_rollup from all of complaint_fact and step_rollup from task_fact (first refresh
    after migration 0017, a full refresh, other rules, bulk loads) and stamp them with the rules."""
    write_rollups(session, count_rollups(session, rules), rules)


def _step_rows(session: Session, where: list[Any]) -> list[dict[str, Any]]:
    """step_rollup rows counted from the completed task_fact rows with a kind copy matching `where`."""
    T = TaskFact
    counts: dict[tuple[Any, ...], list[Any]] = {}
    for t in session.execute(select(T.kind, T.process_key, T.spec_id, T.name, T.completed_at, T.seconds).where(
            *where, T.state == "completed", T.kind.is_not(None), T.completed_at.is_not(None))):
        c = counts.setdefault((t.kind, t.process_key, t.spec_id, t.name, utc_day(t.completed_at)), [0, 0.0, 0, None])
        c[0] += 1
        if t.seconds is not None:
            c[1] += t.seconds
            c[2] += 1
            c[3] = t.seconds if c[3] is None else max(c[3], t.seconds)
    return [{"kind": k, "process_key": p, "spec_id": sp, "name": nm, "day": d, "completed": c[0], "seconds_sum": c[1],
             "seconds_n": c[2], "seconds_max": c[3]} for (k, p, sp, nm, d), c in counts.items()]


def recount_step_days(session: Session, days: set[date] | None) -> None:
    """Recount step_rollup for these UTC days of completion (None: all of it) from task_fact."""
    T, S = TaskFact, StepRollup
    if days is None:
        session.execute(delete(S))
        rows = _step_rows(session, [])
    else:
        if not days:
            return
        wanted = sorted(days)
        session.execute(delete(S).where(S.day.in_(wanted)))
        rows = _step_rows(session, [or_(*[and_(T.completed_at >= utc_midnight(lo), T.completed_at < utc_midnight(hi))
                                          for lo, hi in _day_runs(wanted)])])
    for i in range(0, len(rows), 5000):
        session.execute(insert(S), rows[i:i + 5000])


def rollup_current(session: Session, rules: KpiRules) -> bool:
    """Whether complaint_rollup was built with these rules (and is therefore kept by the refresh)."""
    R = ComplaintRollup
    stamp = session.scalar(select(R.value).where(R.basis == "meta", R.measure == "stamp").limit(1))
    return stamp == rollup_stamp(rules)


_FACT_KEYS = ("instance_id", *(c.key for c in _ROLLUP_COLUMNS))
_TASK_KEYS = ("task_id", "kind", "process_key", "spec_id", "name", "state", "completed_at", "seconds")


def fact_changes(session: Session, instance_ids: list[str], facts: list[dict[str, Any]],
             tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instances' complaint_fact and task_fact rows, old and new, that differ in a column the rollups
    count (as dicts of those columns): only their days and groups need recounting."""
    F, T = ComplaintFact, TaskFact
    out = []
    for keys, table, rows in ((_FACT_KEYS, F, facts), (_TASK_KEYS, T, tasks)):
        old = {tuple(r) for r in session.execute(select(*(getattr(table, k) for k in keys))
                                                 .where(table.instance_id.in_(instance_ids)))}
        new = {tuple(row.get(k) for k in keys) for row in rows}
        out.append([dict(zip(keys, r, strict=True)) for r in old ^ new])
    return out[0], out[1]


def first_closures(session: Session, groups: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[Any]]:
    """The two earliest closures of each (kind, category, product) group (fewer when fewer are closed)."""
    F = ComplaintFact
    out: dict[tuple[str, str, str], list[Any]] = {g: [] for g in groups}
    ordered = sorted(groups)
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(select(F.kind, F.category, F.product, F.closed_at).where(
            tuple_(F.kind, F.category, F.product).in_(ordered[i:i + CHUNK]), F.closed_at.is_not(None))
            .order_by(F.kind, F.category, F.product, F.closed_at))
        for kind, category, product, closed in rows:
            firsts = out[(kind, category, product)]
            if len(firsts) < 2:
                firsts.append(closed)
    return out


def recurrence_days(session: Session, before: dict[tuple[str, str, str], list[Any]],
                     after: dict[tuple[str, str, str], list[Any]]) -> set[tuple[str, date]]:
    """Received days of other cases whose recurrence the replaced facts may have changed: a case is one
    when a closure of another case of its group precedes its receipt, so only cases received between a
    group's old and new earliest (or second earliest, for the case that is the earliest) closure can change."""
    F = ComplaintFact
    days: set[tuple[str, date]] = set()
    for group, old in before.items():
        new = after.get(group, [])
        for i in range(2):
            a, b = (old[i] if i < len(old) else None), (new[i] if i < len(new) else None)
            if a == b:
                continue
            lo = min(t for t in (a, b) if t is not None)
            hi = None if a is None or b is None else max(a, b)
            where = [F.kind == group[0], F.category == group[1], F.product == group[2], F.received_at >= lo]
            if hi is not None:
                where.append(F.received_at <= hi)
            days |= {("received", utc_day(t)) for t in session.scalars(select(F.received_at).where(*where))}
    return days

