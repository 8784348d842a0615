"""The data the bpmn-js viewer (web/static/diagram.js) draws: the definition's XML and, per element,
what to mark. Rendered into the page as a JSON block (templates/_diagram.html); the engine says what
each element did (Runtime.element_states), this module adds what the reader may see of its tasks
and incidents."""

from __future__ import annotations

from typing import Any

from flask import url_for

from engine.errors import EngineError
from engine.permissions import visible_tasks
from engine.views import Actor, InstanceView
from web.context import runtime


def _task_json(task: Any) -> dict[str, Any]:
    return {"name": task.name, "state": task.state, "assignee": task.assignee, "groups": list(task.groups),
            "due_at": task.due_at.isoformat() if task.due_at else None, "completed_by": task.completed_by,
            "url": url_for("inbox.task", task_id=task.id)}


def instance_diagram(a: Actor, instance: InstanceView) -> dict[str, Any] | None:
    """XML, element states (with the visible tasks and open incidents of each element) and flows taken."""
    try:
        xml = runtime().definition_xml(instance.key, instance.version)
        states = runtime().element_states(instance.id)
    except EngineError:
        return None
    tasks = {t.id: t for t in visible_tasks(a, instance)}
    incidents: dict[str, list[Any]] = {}
    for incident in instance.incidents:
        if incident.resolved_at is None and incident.task_id:
            incidents.setdefault(incident.task_id, []).append(incident)
    elements = {}
    for element_id, info in states["elements"].items():
        entry = {k: v for k, v in info.items() if k != "task_ids"}
        entry["tasks"] = [_task_json(tasks[i]) for i in info["task_ids"] if i in tasks]
        entry["incidents"] = [{"message": i.message} for tid in info["task_ids"] for i in incidents.get(tid, [])]
        elements[element_id] = entry
    return {"xml": xml, "elements": elements, "flows": states["flows"], "waiting": states.get("waiting", []),
            "retry_url": url_for("instances.show", instance_id=instance.id) + "#actions" if a.is_lead else None}


def definition_diagram(key: str, version: int | None = None, **extra: Any) -> dict[str, Any] | None:
    """A definition's XML for the viewer, with overlays (`counts`, `heat`) given by the caller."""
    try:
        xml = runtime().definition_xml(key, version)
    except EngineError:
        return None
    return {"xml": xml, **extra}
