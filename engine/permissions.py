"""Who may see and act on a task or an instance: the rules, in one place.

The runtime enforces them, the web pages and the API use the same functions to decide what to show,
so a button is offered exactly when the runtime would accept the action. Plain functions over an
`Actor` and anything with a task's attributes (an ORM row, a Core row or a `TaskView`); the groups
are passed separately because rows keep them in their own table.

- see a task: quality leads and admins, its assignee, whoever completed it, a member of one of
  its candidate groups, or one of its candidate users; anyone else is told it does not exist (404);
- act on a task (claim, unclaim, complete): quality leads and admins, its assignee, a member of
  one of its groups, or one of its candidate users; anyone who may see it but not act gets
  PermissionDeniedError (403), anyone who may not even see it NotFoundError (404: acting on a hidden
  task must not reveal its name or groups);
- a task with no assignee and no candidates (the Unassigned queue) is seen only by quality leads
  and admins, who assign it;
- see an instance (DESIGN §8): quality leads and admins; an employee only when they may see one of
  its tasks (which includes having worked on one); else 404, for reading and acting alike;
- register a complaint on a customer's behalf (phone, e-mail, visit): members of the group
  `customer_service` (CUSTOMER_SERVICE_GROUP; the group the complaint process offers the customer
  steps to), quality leads and admins; others get PermissionDeniedError (403).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.assignment import candidate_key, candidate_names, split_candidates
from engine.errors import NotFoundError, PermissionDeniedError
from engine.views import Actor, InstanceView
from storage.camunda_queries import Viewer

OPEN_STATES = ("open", "claimed")
CUSTOMER_SERVICE_GROUP = "customer_service"


def _in_groups(actor: Actor, groups: Iterable[str], task: Any = None) -> bool:
    """Offered to the actor: `groups` are a row's stored candidate names (groups and `user:` keys);
    a TaskView keeps its candidate users apart (`candidate_users`)."""
    names = set(groups) | {candidate_key(u) for u in (getattr(task, "candidate_users", None) or ())}
    return not candidate_names(actor).isdisjoint(names)


def may_see_task(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    return (actor.is_lead or actor.username in (task.assignee, task.completed_by)
            or _in_groups(actor, groups, task))


def may_act_on_task(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    return actor.is_lead or actor.username == task.assignee or _in_groups(actor, groups, task)


def check_may_act(actor: Actor, task: Any, groups: Iterable[str]) -> None:
    """Claim, unclaim and complete need a lead, the assignee, or a member of the task's groups."""
    if may_act_on_task(actor, task, groups):
        return
    if not may_see_task(actor, task, groups):
        raise NotFoundError(f"task {getattr(task, 'id', '')} not found")
    real, users = split_candidates(list(groups))
    users += list(getattr(task, "candidate_users", None) or [])
    where = "".join(f" ({what}: {', '.join(names)})" for what, names in (("groups", real), ("candidate users", users))
                    if names)
    raise PermissionDeniedError(f"you may not work on task '{task.name}'{where}")


# What the runtime accepts for each action, so pages offer exactly the buttons that will work.
def may_claim(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    return task.state == "open" and may_act_on_task(actor, task, groups)


def may_unclaim(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    """Held by the actor (or a lead steps in), and there are groups to give it back to."""
    groups = list(groups)
    has_candidates = bool(groups) or bool(getattr(task, "candidate_users", None))
    return (task.state == "claimed" and has_candidates and may_act_on_task(actor, task, groups)
            and (task.assignee == actor.username or actor.is_lead))


def may_complete(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    """Open or claimed, the actor may act on it, and nobody else holds it."""
    return (task.state in OPEN_STATES and may_act_on_task(actor, task, groups)
            and task.assignee in (None, actor.username))


def is_own_work(actor: Actor, task: Any, groups: Iterable[str]) -> bool:
    """Open work that is the actor's own: held by them, or unassigned in one of their groups
    (a lead's right to step in on any task does not make every task theirs)."""
    return task.state in OPEN_STATES and (
        task.assignee == actor.username or (task.assignee is None and _in_groups(actor, groups, task)))


def visible_tasks(actor: Actor, instance: InstanceView) -> list[Any]:
    """The instance's tasks the actor may see."""
    return [t for t in instance.tasks if may_see_task(actor, t, t.groups)]


def may_see_instance(actor: Actor, instance: InstanceView) -> bool:
    return actor.is_lead or any(may_see_task(actor, t, t.groups) for t in instance.tasks)


# The same rules for lists answered in SQL (storage.queries.visible_task_ids applies `may_see_task`
# to whoever these describe), so a list never shows what reading one item would refuse.
def task_viewer(actor: Actor) -> Viewer:
    """`may_see_task` for a list: quality leads and admins see every task; anyone else the tasks
    assigned to them, completed by them, or offered to one of their candidate names."""
    return Viewer(actor.username, candidate_names(actor), actor.is_lead)


def engine_rest_instance_viewer(actor: Actor) -> Viewer:
    """Which instances /engine-rest lists: workers, quality leads and admins every one (they run
    the processes' technical steps); anyone else those `may_see_instance` lets them see."""
    return Viewer(actor.username, candidate_names(actor), may_work_external_tasks(actor))


def check_may_see_instance(actor: Actor, instance: InstanceView) -> InstanceView:
    """The instance, or NotFoundError (its existence is not revealed to those who may not see it)."""
    if not may_see_instance(actor, instance):
        raise NotFoundError(f"instance {instance.id} not found")
    return instance


def check_lead(actor: Actor, doing: str) -> None:
    """Instance-wide changes (cancel, retry, reassign, due dates) are for quality leads and admins."""
    if not actor.is_lead:
        raise PermissionDeniedError(f"only quality leads and admins can {doing}")


# /engine-rest (DESIGN §8): technical `worker` accounts fetch and complete external tasks, start
# instances and correlate messages; quality leads and admins may do the same.
def may_work_external_tasks(actor: Actor) -> bool:
    return actor.role in ("worker", "quality_lead", "admin")


def check_may_work_external_tasks(actor: Actor) -> None:
    if not may_work_external_tasks(actor):
        raise PermissionDeniedError("only workers, quality leads and admins may fetch and complete external tasks")


def check_may_start_and_correlate(actor: Actor, doing: str) -> None:
    if not may_work_external_tasks(actor):
        raise PermissionDeniedError(f"only workers, quality leads and admins may {doing}")


def check_lead_or_worker(actor: Actor, doing: str) -> None:
    if not may_work_external_tasks(actor):
        raise PermissionDeniedError(f"only quality leads, admins and workers may {doing}")


def may_register_complaints(actor: Actor) -> bool:
    """Staff intake of complaints that arrived by phone, e-mail or a visit."""
    return actor.is_lead or CUSTOMER_SERVICE_GROUP in actor.groups


def check_may_register_complaints(actor: Actor) -> None:
    if not may_register_complaints(actor):
        raise PermissionDeniedError(f"only customer service (group '{CUSTOMER_SERVICE_GROUP}'), quality leads "
                                    "and admins may register complaints")


def may_use_web_inbox(actor: Actor) -> bool:
    """Technical accounts (role `worker`) have no inbox and no web pages."""
    return actor.role != "worker"


def check_admin(actor: Actor, doing: str) -> None:
    """Accounts (create, change, deactivate users; reset passwords; list and revoke API tokens) are for admins."""
    if actor.role != "admin":
        raise PermissionDeniedError(f"only admins can {doing}")
