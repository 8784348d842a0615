"""Who may see and act on a task: the one home of these rules (runtime, web pages and API use it).

Reading a task outside one's reach answers 404 (it stays invisible); acting on one answers 403.
"""

from __future__ import annotations

from typing import Any

from engine.errors import PermissionDeniedError
from engine.views import Actor


def may_see_task(actor: Actor, task: Any, groups: list[str]) -> bool:
    """Leads see every task; others the tasks assigned to or completed by them, or of their groups."""
    return actor.is_lead or actor.username in (task.assignee, task.completed_by) or bool(set(groups) & actor.groups)


def may_act_on_task(actor: Actor, task: Any, groups: list[str]) -> bool:
    """Claim, unclaim and complete need a lead, the assignee, or a member of the task's groups."""
    return actor.is_lead or actor.username == task.assignee or bool(set(groups) & actor.groups)


def check_may_act(actor: Actor, task: Any, groups: list[str]) -> None:
    if not may_act_on_task(actor, task, groups):
        where = f" (groups: {', '.join(groups)})" if groups else ""
        raise PermissionDeniedError(f"you may not work on task '{task.name}'{where}")


def check_lead(actor: Actor, doing: str) -> None:
    """Instance-wide changes (cancel, retry, reassign, due dates) are for quality leads and admins."""
    if not actor.is_lead:
        raise PermissionDeniedError(f"only quality leads and admins can {doing}")
