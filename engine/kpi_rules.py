"""The process-specific KPI rules, in one place.

The KPI fact tables (storage/kpi_facts.py) and their queries (storage/kpi_queries.py) know columns,
not processes. What a column means for our processes is decided here and handed to storage:

* Which instances are tracked: those whose data carries ``received_at`` (the data names of
  processes/README.md). Their *kind* comes from the process key (``KINDS``), else from the
  reference prefix (``PREFIXES``), else it is a complaint.
* Received / acknowledged / closed are the data times ``received_at`` / ``acknowledged_at`` /
  ``closed_at`` that the processes' scripts set (acknowledged = after the *Acknowledge the customer*
  task, closed = any outcome); no element ids are involved.
* Rejected: ``valid`` is false (triage) or ``status`` is ``rejected``. Cancelled instances are not
  counted; the actions of completed or cancelled instances are not in today's backlog.
* Case KPIs count complaints unless a process is chosen; the ISO §10.2 report lists complaints and
  supplier nonconformities; satisfaction reads CSAT 1-5 and NPS 0-10 (promoters 9-10, detractors 0-6).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from storage.kpi_queries import KpiRules

KINDS = {"complaint_to_improvement": "complaint", "customer_feedback": "feedback",
         "supplier_nonconformity": "nonconformity"}
PREFIXES = {"CMP": "complaint", "FB": "feedback", "SNC": "nonconformity"}
DEFAULT_KIND = "complaint"
ACK_TARGET_S = 24 * 3600
HEAT_MAP_PROCESS = "complaint_to_improvement"  # the dashboard's diagram when no process is chosen

RULES = KpiRules(
    case_kind="complaint",
    kinds=tuple(sorted(set(KINDS.values()))),
    feedback_kind="feedback",
    report_kinds=("complaint", "nonconformity"),
    rejected_status="rejected",
    ack_target_s=ACK_TARGET_S,
    promoter_min=9,
    detractor_max=6,
    cancelled="cancelled",
    not_backlog=("cancelled", "completed"),
)


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


# ---------------------------------------------------------------------------------------- facts

def kind_of(process_key: str, data: dict[str, Any]) -> str:
    if process_key in KINDS:
        return KINDS[process_key]
    prefix = str(data.get("reference") or "").split("-", 1)[0].upper()
    return PREFIXES.get(prefix, DEFAULT_KIND)


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


def with_actual_work(actions: list[dict[str, Any]], tasks: list[Any]) -> list[dict[str, Any]]:
    """The action facts as the work was really done: an action's task (linked through the record its
    form edits, `human_task.context`, by the action's id) gives the actual owner — whoever holds or
    completed it after any reassignment, None while it waits in its groups —, the due date as it
    stands after any change, and the completion date when none was entered."""
    by_id = {a["action_id"]: a for a in actions}
    for t in sorted(tasks, key=lambda t: t.created_at):  # a later task of the same action wins
        for record in (getattr(t, "context", None) or {}).values():
            fact = by_id.get(str(record.get("id"))[:40]) if isinstance(record, dict) and record.get("id") else None
            if fact is None or t.state == "cancelled":
                continue
            fact["owner"] = _text(t.completed_by if t.state == "completed" else t.assignee, 80)
            if t.due_at is not None:
                fact["due_on"] = _date(t.due_at)
            if fact["done_on"] is None and t.state == "completed" and t.completed_at is not None:
                fact["done_on"] = _date(t.completed_at)
    return actions


def task_fact(task: Any) -> dict[str, Any]:
    """The task_fact row of a human task row: its time in the step once completed."""
    return {"task_id": task.id, "instance_id": task.instance_id, "process_key": task.process_key,
            "spec_id": task.spec_id, "name": task.name, "state": task.state, "created_at": task.created_at,
            "completed_at": task.completed_at,
            "seconds": (task.completed_at - task.created_at).total_seconds()
            if task.completed_at and task.state == "completed" else None}
