"""What the `external_task` table must say for a workflow: one open row per external task whose
token waits (STARTED), closed (`cancelled`) when the token left without a worker completing it
(a boundary event, a cancelled instance). Like engine/runtime/projection.py it only works out the
changes at save; the unit of work writes them at flush. A workflow whose spec has no external task
costs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from engine.external_task_model import external_settings, resolve_priority
from engine.runtime import scopes, spiff
from engine.runtime.values import json_safe
from storage import external_tasks as store

if TYPE_CHECKING:
    from engine.runtime.unit_of_work import Loaded


@dataclass
class ExternalChanges:
    new: list[dict[str, Any]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    at: datetime | None = None


def project(conn: Connection, loaded: Loaded, now: datetime) -> ExternalChanges | None:
    workflow = loaded.workflow
    if not spiff.has_external_tasks(workflow):
        return None
    waiting = spiff.waiting_external_tasks(workflow)
    states = _row_states(conn, loaded, waiting)
    changes = ExternalChanges(at=now)
    for task_id, state in states.items():
        if state == "open" and task_id not in waiting:
            changes.closed.append(task_id)
            loaded.audit("external_task_cancelled", None, task_id, {})
    for task_id, task in waiting.items():
        if task_id in states:
            continue
        settings = external_settings(task) or {}
        row = loaded.row
        changes.new.append({
            "id": task_id, "instance_id": row.id, "definition_id": row.definition_id, "process_key": row.process_key,
            "business_key": row.business_key, "activity_id": spiff.element_id(task),
            "activity_name": spiff.element_name(task), "topic": settings.get("topic") or "",
            "priority": resolve_priority(settings.get("priority"), task.data), "retries": None, "state": "open",
            "locked_by": None, "locked_until": None, "error_message": None, "error_details": None,
            "properties": settings.get("properties") or None,
            "local_variables": json_safe({k: task.data[k] for k in scopes.locals_of(task) if k in task.data}) or None,
            "created_at": now, "ended_at": None})
        loaded.audit("external_task_created", None, task_id, {"task": spiff.element_name(task),
                                                              "topic": settings.get("topic")})
    return changes if changes.new or changes.closed else None


def _row_states(conn: Connection, loaded: Loaded, waiting: dict[str, Any]) -> dict[str, str]:
    """{task id: state} of the instance's open rows and of the waiting tasks' rows whatever their state:
    from what the unit of work already read with the instance's lock when it did, else read now."""
    if loaded.new:
        return {}
    known = loaded.external_rows
    if known is None:
        return {task_id: row.state for task_id, row in store.of_instances(conn, [loaded.row.id], list(waiting)).items()}
    return {task_id: state for task_id, state in known.items() if state == "open" or task_id in waiting}


def write(conn: Connection, all_changes: list[ExternalChanges]) -> None:
    store.insert_rows(conn, [r for c in all_changes for r in c.new])
    for c in all_changes:
        if c.closed and c.at is not None:
            store.close_rows(conn, c.closed, "cancelled", c.at)
