"""Plain read models the engine hands to the web layer, the API, the CLI and the scheduler.

Callers never see SpiffWorkflow objects or ORM rows, so sessions can close right after a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

ROLES = ("admin", "quality_lead", "employee", "worker")  # worker: /engine-rest only


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user name, the groups they belong to and their built-in role."""

    username: str
    groups: frozenset[str] = frozenset()
    role: str = "employee"

    @property
    def is_lead(self) -> bool:
        return self.role in ("quality_lead", "admin")

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(name, frozenset(), "admin")


@dataclass
class TaskView:
    id: str
    name: str
    spec_id: str
    instance_id: str
    process_key: str
    state: str
    assignee: str | None
    groups: list[str]
    due_at: datetime | None
    follow_up_at: datetime | None
    priority: int
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    form: list[dict[str, Any]] = field(default_factory=list)
    documentation: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    candidate_users: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)  # the record(s) the step's form edits
    # filled by the task lists: the process's display name and the case (engine/cases.py)
    process_name: str | None = None
    case: dict[str, Any] | None = None

    @property
    def unassigned(self) -> bool:
        """Open with no assignee and no candidates: waiting in the quality leads' Unassigned queue."""
        return self.state == "open" and not self.assignee and not self.groups and not self.candidate_users

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class IncidentView:
    id: int
    task_id: str | None
    task_name: str | None
    message: str
    data: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class AuditView:
    at: datetime
    actor: str | None
    type: str
    task: str | None
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class InstanceView:
    id: str
    key: str
    version: int
    status: str
    business_key: str | None
    data: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    tasks: list[TaskView] = field(default_factory=list)
    incidents: list[IncidentView] = field(default_factory=list)
    audit: list[AuditView] = field(default_factory=list)
    # the remembered Camunda types of its variables (engine/runtime/variable_types.py), for /engine-rest
    # only: not part of `as_dict` (/api/v1 answers plain data)
    variable_types: dict[str, str] = field(default_factory=dict, metadata={"plain": False})

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class ScheduleView:
    """A process's timer start: `state` is `scheduled`, `retrying` (the last start failed; the next
    try is at `retry_at`), `incident` (every attempt failed; a lead re-arms it) or `done`."""

    key: str
    version: int
    expression: str
    state: str
    next_at: datetime | None
    remaining: int
    started: int
    attempts: int
    last_error: str | None
    failed_at: datetime | None
    retry_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(view: Any) -> dict[str, Any]:
    """A view as JSON-ready data: datetimes as ISO text, nested views as dicts, every dict and list a
    new one (the caller may change it). Not dataclasses.asdict: it deep-copies every value first,
    and the API answers a task completion with the whole instance."""
    names = _FIELD_NAMES.get(type(view))
    if names is None:
        names = _FIELD_NAMES.setdefault(type(view), tuple(f.name for f in fields(view)
                                                             if f.metadata.get("plain", True)))
    return {name: _jsonable(getattr(view, name)) for name in names}


_SCALARS = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    if type(value) in _SCALARS:  # most values: no further checks
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if type(value) in _FIELD_NAMES or hasattr(value, "__dataclass_fields__"):
        return _plain(value)
    return value
