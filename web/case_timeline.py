"""The case timeline and the steps still to come, as people read them.

Built from the instance's audit trail (who did what when; the values a completion entered, labelled
by that task's form; the new assignee of a reassignment and the new date of a due-date change),
its comments and attachments, and — for what is still ahead — its open tasks and waiting events
with their due times. Task pages use `earlier_answers` to show what previous steps entered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from web.case_values import (
    HIDDEN,
    actor_name,
    form_labels,
    format_value,
    named,
    option_names,
    short_label,
    words,
)

# what each audit type says; those not listed (engine bookkeeping) stay off the timeline
_SAYS = {
    "start": "started the case", "complete": "completed", "claim": "took", "unclaim": "gave back",
    "assign": "reassigned", "due_changed": "changed the due date of", "task_created": "opened",
    "timer_fired": "time is up", "cancel": "cancelled the case", "retry": "retried the case", "end": "case ended",
    "incident": "problem", "comment": "commented", "attach": "attached",
    "assignee_unavailable": "could not assign",
}

def _stamp(value: Any) -> str | None:
    text = format_value(value)
    return text if isinstance(text, str) else None


def labelled(values: Mapping[str, Any], labels: Mapping[str, str], form: Iterable[Mapping[str, Any]] = ()
             ) -> list[dict[str, Any]]:
    """`[{label, value}]` of submitted values worth showing, in the order they were entered; a choice of
    `form` shows its name."""
    out = []
    options = option_names([form])
    for key, value in (values or {}).items():
        if key.startswith("_") or key in HIDDEN:
            continue
        text = format_value(named(key, value, options))
        if text is None:
            continue
        out.append({"id": key, "label": short_label(labels.get(key) or words(key.rsplit(".", 1)[-1])),
                    "value": text})
    return out


def timeline(instance: Any, comments: Iterable[Mapping[str, Any]], show_logs: bool = False) -> list[dict[str, Any]]:
    """Newest first: `{at, who, what, task, detail, fields, kind}` per event worth a person's time."""
    tasks = {t.id: t for t in instance.tasks}
    bodies = {c["id"]: c["body"] for c in comments}
    out = []
    for e in instance.audit:
        p = e.payload or {}
        if e.type not in _SAYS and not (show_logs and e.type == "log"):
            continue
        task = tasks.get(e.task) if e.task else None
        entry: dict[str, Any] = {"at": e.at, "who": actor_name(e.actor), "what": _SAYS.get(e.type, "log"),
                                 "kind": e.type, "task": p.get("task"), "detail": None, "fields": []}
        if e.type == "complete":
            form = task.form if task else []
            entry["fields"] = labelled(p.get("data") or {}, form_labels([form]), form)
        elif e.type == "assign":
            entry["detail"] = f"to {p['to']}" if p.get("to") else "back to its groups"
        elif e.type == "due_changed":
            entry["detail"] = f"to {_stamp(p.get('to'))}" if p.get("to") else "to no due date"
        elif e.type == "task_created":
            whom = p.get("assignee") or ", ".join((p.get("groups") or []) + (p.get("candidate_users") or []))
            entry["detail"] = f"for {whom}" if whom else "for the quality leads (unassigned)"
        elif e.type == "assignee_unavailable":
            whom = ", ".join((p.get("groups") or []) + (p.get("candidate_users") or []))
            state = "is deactivated" if p.get("reason") == "deactivated" else "has no account"
            went = f"offered to {whom}" if whom else "left for the quality leads to assign"
            entry["detail"] = f"to {p.get('assignee')}, who {state} — {went}"
        elif e.type == "comment":
            entry["detail"] = bodies.get(p.get("comment"), p.get("excerpt"))
        elif e.type == "attach":
            entry["detail"] = p.get("filename")
            entry["who"] = entry["who"] or "the customer"
        elif e.type in ("cancel",):
            entry["detail"] = p.get("reason") or None
        elif e.type in ("incident", "log"):
            entry["detail"] = p.get("message")
        out.append(entry)
    return list(reversed(out))


def ahead(instance: Any, visible: Iterable[Any], diagram: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Open steps (every task of the case still to do, with who holds it; linked when the reader may
    open it) and waiting events (timers, messages) with their due times, the soonest first. Whoever
    may see the case may know where it stands (its audit names every step anyway)."""
    rows: list[dict[str, Any]] = []
    linked = {t.id for t in visible}
    for t in instance.tasks:
        if t.state in ("open", "claimed"):
            rows.append({"name": t.name, "kind": "task", "task_id": t.id if t.id in linked else None, "due": t.due_at,
                         "who": t.assignee or ", ".join(t.groups) or "the quality leads"})
    for info in (diagram or {}).get("waiting") or []:
        due = info.get("due")
        rows.append({"name": info.get("name") or "Waiting", "kind": info.get("waiting_for") or "event",
                     "task_id": None, "due": datetime.fromisoformat(due) if due else None,
                     "who": {"timer": "the clock", "message": f"message {info.get('message') or ''}".strip(),
                             "external task": "an external system"}.get(info.get("waiting_for"), "an event")})
    far = datetime.max.replace(tzinfo=None)
    return sorted(rows, key=lambda r: (r["due"] is None, r["due"].replace(tzinfo=None) if r["due"] else far))


def earlier_answers(instance: Any, current_task_id: str | None = None) -> list[dict[str, Any]]:
    """What earlier steps of the case entered, newest first: `[{task, by, at, fields}]` (labelled by
    each step's form). A task page shows them beside its form, whatever the process."""
    out = []
    done = [t for t in instance.tasks if t.state == "completed" and t.id != current_task_id and t.values]
    for t in sorted(done, key=lambda t: t.completed_at or t.created_at, reverse=True):
        values = labelled(t.values, form_labels([t.form]), t.form)
        if values:
            out.append({"task": t.name, "by": t.completed_by, "at": t.completed_at, "fields": values})
    return out


def step_about(task: Any) -> list[dict[str, Any]]:
    """What a step is about when its form edits a record (a corrective action's what, owner, due):
    `[{title, fields}]`, the parts the form itself asks for left out."""
    edited = {f["id"] for f in task.form or []}
    out = []
    for name, record in (task.context or {}).items():
        if not isinstance(record, Mapping):
            continue
        shown = {k: v for k, v in record.items() if f"{name}.{k}" not in edited and k not in ("id", "round")}
        fields = labelled(shown, {})
        if fields:
            # as planned when the task was created: who holds it and when it is due now are the task's own
            out.append({"title": f"{words(name)} (as planned)", "fields": fields})
    return out
