"""The one incident writer.

An incident is a failed script, expression, assignment or timer, or an external task whose worker
reported its last failure: the instance's status becomes
`incident`, an `incident` audit row is written with the message, and a quality lead sees it on
the instance page and retries after fixing the cause. Two situations raise one:
- while a unit of work has the instance loaded (`on_loaded`): the rows go out with its save;
- when the instance could not even be advanced (a timer that kept failing, `on_instance`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import clock
from engine.runtime import spiff
from engine.runtime.values import json_safe
from engine.views import Actor
from storage import instances as store

if TYPE_CHECKING:
    from engine.runtime.unit_of_work import Loaded, UnitOfWork

log = logging.getLogger("pdcaflow.engine")


def _row(instance_id: str, task_id: str | None, task_name: str | None, message: str, data: dict[str, Any],
         now: datetime) -> dict[str, Any]:
    log.warning("incident instance=%s task=%s: %s", instance_id, task_id, message)
    return {"instance_id": instance_id, "task_id": task_id, "task_name": task_name, "message": message,
            "data": json_safe(data), "created_at": now, "resolved_at": None, "resolved_by": None}


def on_loaded(loaded: Loaded, task: Any, exc: BaseException, actor: Actor | None) -> None:
    """The task (or the instance, when `task` is None) failed inside a unit of work."""
    message = spiff.message_of(exc)
    data = dict(task.data) if task is not None else {}
    if task is not None:
        spiff.mark_failed(task)
    row = _row(loaded.row.id, str(task.id) if task is not None else None,
               spiff.element_name(task) if task is not None else None, message, data, clock.now())
    loaded.incidents.append(row)
    loaded.row.status = "incident"
    loaded.audit("incident", actor, row["task_id"], {"message": message, "task": row["task_name"]})


def on_external_task(loaded: Loaded, task_id: str, task_name: str, message: str, details: str | None,
                     actor: Actor | None) -> None:
    """An external task's worker reported its last failure (retries 0): the token keeps waiting at
    the task; the incident is resolved by setting retries (engine/external_tasks.py)."""
    row = _row(loaded.row.id, task_id, task_name, message,
               {"external_task_id": task_id, "error_details": details}, clock.now())
    loaded.incidents.append(row)
    loaded.row.status = "incident"
    loaded.audit("incident", actor, task_id, {"message": message, "task": task_name})


def on_instance(uow: UnitOfWork, instance_id: str, task_id: str | None, task_name: str | None, message: str,
                actor: Actor) -> None:
    """The instance could not be advanced at all (e.g. a timer failed every attempt): record it now."""
    row = _row(instance_id, task_id, task_name, message, {}, clock.now())
    row["id"] = store.insert_incident(uow.conn, row)
    store.mark_incident(uow.conn, instance_id)
    uow.audit("incident", actor, instance_id, task_id, {"message": message, "task": task_name})
