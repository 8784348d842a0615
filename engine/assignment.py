"""Who gets a user task and when it is due, from the camunda:* attributes read by the parser.

Precedence: assignee > candidateUsers / candidateGroups > lane name. Values are literals or
`${expression}` evaluated in the sandbox over the task's data. Due and follow-up dates are an
ISO 8601 date-time, or an ISO 8601 duration counted from the task's creation. A task with none of
them has no assignee and no candidates: it waits in the quality leads' Unassigned queue.

An assignee — written in the model or computed (`${owner}`) — must be an active user: when the
task is created, `hold_unavailable_assignees` looks the named people up (one query for a save's new
tasks, none when no task names one) and a task whose assignee has no account or a deactivated one
is created without an assignee, for its candidate groups/users, else its lane, else the quality
leads' Unassigned queue (the leads assign it: it is theirs to decide who can do it). The
projection audits it (`assignee_unavailable`) and the notifier tells the quality leads
(engine/notifications.py).

Candidate users are stored beside the candidate groups (one `human_task_group` row each, named
`candidate_key(user)`, i.e. `user:NAME`), so "offered to me" stays one indexed look-up: an actor's
candidate names are their groups plus their own `user:` key (`candidate_names`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.errors import EngineError
from engine.sandbox import evaluate
from engine.views import Actor
from storage import instances as store

CANDIDATE_USER = "user:"


def candidate_key(username: str) -> str:
    """The name a candidate user is stored under beside the candidate groups."""
    return CANDIDATE_USER + username


def candidate_names(actor: Actor) -> frozenset[str]:
    """What makes a task offered to `actor`: one of their groups, or their own candidate-user key."""
    return frozenset(actor.groups) | {candidate_key(actor.username)}


def split_candidates(names: list[str]) -> tuple[list[str], list[str]]:
    """(groups, candidate users) of a task's stored candidate names."""
    groups = [n for n in names if not n.startswith(CANDIDATE_USER)]
    users = [n[len(CANDIDATE_USER):] for n in names if n.startswith(CANDIDATE_USER)]
    return groups, users


class AssignmentError(EngineError):
    """An assignment attribute could not be evaluated; becomes an incident on the instance."""


@dataclass
class Assignment:
    assignee: str | None
    groups: list[str]
    due_at: datetime | None
    follow_up_at: datetime | None
    priority: int
    users: list[str] = field(default_factory=list)  # candidate users
    lane: str | None = None  # the task's lane: who gets it when it names no candidates
    # {"assignee", "reason": "unknown" | "deactivated"} when the assignee named is no active user
    unavailable: dict[str, str] | None = None

    @property
    def candidates(self) -> list[str]:
        """Candidate groups and users as stored (`human_task_group` rows)."""
        return list(dict.fromkeys([*self.groups, *(candidate_key(u) for u in self.users)]))


def _value(raw: str | None, data: dict[str, Any], what: str, context: dict[str, Any] | None = None) -> Any:
    if raw is None or raw == "":
        return None
    if "${" not in raw:
        return raw
    try:
        return evaluate(raw, data, context)
    except Exception as exc:
        raise AssignmentError(f"camunda:{what} '{raw}' could not be evaluated: {exc}") from exc


def _groups(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
    return sorted({str(item).strip() for item in items if str(item).strip()})


def parse_when(value: Any, created_at: datetime, what: str) -> datetime | None:
    """ISO date-time, ISO date, or ISO duration from `created_at`."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    try:
        if text.upper().startswith("P"):
            parsed = TimerEventDefinition.parse_iso_duration(text)
            return created_at + TimerEventDefinition.get_timedelta_from_start(parsed, created_at)
        if len(text) == 10:
            text += "T23:59:59+00:00"  # a due *date* means the end of that day
        parsed_dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed_dt if parsed_dt.tzinfo else parsed_dt.replace(tzinfo=timezone.utc)
    except Exception as exc:
        raise AssignmentError(f"camunda:{what} '{text}' is neither an ISO 8601 date-time nor a duration") from exc


def resolve(attrs: dict[str, Any], data: dict[str, Any], created_at: datetime,
            context: dict[str, Any] | None = None) -> Assignment:
    """`context`: the external context of the expressions (Camunda's `execution`, engine/runtime/camunda.py)."""
    assignee = _value(attrs.get("assignee"), data, "assignee", context)
    groups = _groups(_value(attrs.get("candidateGroups"), data, "candidateGroups", context))
    users = _groups(_value(attrs.get("candidateUsers"), data, "candidateUsers", context))
    if not groups and not users and not assignee and attrs.get("lane"):
        groups = [attrs["lane"]]
    due = parse_when(_value(attrs.get("dueDate"), data, "dueDate", context), created_at, "dueDate")
    follow = parse_when(_value(attrs.get("followUpDate"), data, "followUpDate", context), created_at, "followUpDate")
    priority_raw = _value(attrs.get("priority"), data, "priority", context)
    try:
        priority = int(priority_raw) if priority_raw not in (None, "") else 50
    except (TypeError, ValueError) as exc:
        raise AssignmentError(f"camunda:priority '{priority_raw}' is not a whole number") from exc
    return Assignment(str(assignee).strip() if assignee else None, groups, due, follow, priority, users,
                      lane=attrs.get("lane") or None)


def hold_unavailable_assignees(conn: Any, assignments: list[Assignment]) -> None:
    """Take the assignee off each assignment naming no active user (recorded in `unavailable`), so the
    task goes to its candidates, else its lane, else the Unassigned queue. One query for all of them,
    none when no assignment names an assignee."""
    named = {a.assignee for a in assignments if a.assignee}
    if not named:
        return
    states = store.account_states(conn, named)
    for a in assignments:
        if a.assignee and not states.get(a.assignee):
            a.unavailable = {"assignee": a.assignee, "reason": "deactivated" if a.assignee in states else "unknown"}
            a.assignee = None
            if not a.groups and not a.users and a.lane:
                a.groups = [a.lane]


__all__ = ["Assignment", "AssignmentError", "candidate_key", "candidate_names", "hold_unavailable_assignees",
           "parse_when", "resolve", "split_candidates", "timedelta"]
