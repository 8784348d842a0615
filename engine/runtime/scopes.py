"""Process-scoped variables, as Camunda 7 keeps them.

SpiffWorkflow gives every task its own copy of the data, copied from task to task along the flow:
a write in one parallel branch, on a non-interrupting boundary path or in an event subprocess never
reaches the other branches (a counter `fired = fired + 1` on a boundary path stays 0, a conditional
event never sees `go = True`). Camunda keeps variables in the process instance's scope instead, and
every path reads and writes that one scope.

We keep SpiffWorkflow's copies but make them agree: after a task has run, its *delta* (the variables
it added, changed or removed compared with its data before the run) is applied to every task of the
same process scope, whatever its state. Completed tasks are included because SpiffWorkflow reads
them later (a join merges its branches' last tasks, a subprocess hands its last task's data back to
its parent), and a stale copy there would undo the write. Deltas are usually a few variables, so the
cost is one dictionary assignment per task of the instance per changed variable.

Scope: a process instance with its embedded subprocesses and event subprocesses. A call activity's
called process is a scope of its own (Camunda starts a separate instance; data crosses only through
`camunda:in`/`camunda:out`). Local variables (a multi-instance element variable and `loopCounter`,
`camunda:inputOutput` input parameters) are listed in the task's internal data under LOCALS_KEY:
they are never published, and a published variable never overwrites a task's local of that name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

LOCALS_KEY = "pdca_locals"


def locals_of(task: Any) -> frozenset[str] | tuple[str, ...]:
    return task.internal_data.get(LOCALS_KEY) or ()


def add_locals(task: Any, names: Iterable[str]) -> None:
    """Declare variables local to this task (they stay out of the process scope)."""
    current = list(task.internal_data.get(LOCALS_KEY) or [])
    current.extend(n for n in names if n not in current)
    task.internal_data[LOCALS_KEY] = current


def is_call_activity(spec: Any) -> bool:
    # The Camunda parser builds embedded subprocesses with the CallActivity class too; our parser
    # marks the real call activities (engine/bpmn_parser.py).
    return ((getattr(spec, "extensions", None) or {}).get("camunda") or {}).get("kind") == "callActivity"


def scope_root(workflow: Any) -> Any:
    """The workflow owning the process scope `workflow` belongs to."""
    top = workflow.top_workflow
    current = workflow
    while current.parent_task_id is not None:
        parent = top.get_task_from_id(current.parent_task_id)
        if parent is None or is_call_activity(parent.task_spec):
            return current
        current = parent.workflow
    return current


def scope_workflows(workflow: Any) -> list[Any]:
    """Every workflow (the process and its embedded subprocesses) of `workflow`'s scope."""
    root = scope_root(workflow)
    top = workflow.top_workflow
    members = [root]
    if top.subprocesses:
        members.extend(sub for sub in top.subprocesses.values() if sub is not root and scope_root(sub) is root)
    return members


def snapshot(task: Any) -> dict[str, Any]:
    """The task's data before it changes (a deep copy: scripts mutate lists and dicts in place)."""
    return deepcopy(task.data)


def delta(before: dict[str, Any], after: dict[str, Any], local: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """(changed or added variables, removed names) from `before` to `after`, locals left out."""
    skip = set(local)
    changed = {k: v for k, v in after.items() if k not in skip and (k not in before or before[k] != v)}
    removed = [k for k in before if k not in after and k not in skip]
    return changed, removed


def publish(task: Any, before: dict[str, Any] | None) -> bool:
    """Apply what `task` wrote since `before` to every task of its process scope. True if it wrote."""
    if before is None:
        return False
    changed, removed = delta(before, task.data, locals_of(task))
    if not changed and not removed:
        return False
    apply(task.workflow, changed, removed, source=task)
    return True


def apply(workflow: Any, changed: dict[str, Any], removed: Iterable[str] = (), source: Any = None) -> None:
    """Set (and remove) variables in the whole process scope of `workflow`."""
    removed = list(removed)
    for member in scope_workflows(workflow):
        for task in member.tasks.values():
            if task is source:
                continue
            local = locals_of(task)
            data = task.data
            for key, value in changed.items():
                if key in local:
                    continue
                data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else deepcopy(value)
            for key in removed:
                if key not in local:
                    data.pop(key, None)


def receive(task: Any, variables: dict[str, Any]) -> None:
    """Variables arriving from outside (a message or signal payload, corrected data on a retry):
    set on `task` and published to its whole process scope."""
    before = snapshot(task)
    task.data.update(variables)
    publish(task, before)


def shared_data(task: Any) -> dict[str, Any]:
    """The task's data without its local variables: what the process scope holds."""
    local = locals_of(task)
    return {k: v for k, v in task.data.items() if k not in local} if local else task.data


class Tracker:
    """Callbacks for BpmnWorkflow.do_engine_steps: the data of each task before it runs, and its
    delta published after it ran."""

    def __init__(self) -> None:
        self.before: dict[Any, dict[str, Any]] = {}

    def will_run(self, task: Any) -> None:
        self.before.setdefault(task.id, snapshot(task))

    def did_run(self, task: Any) -> None:
        publish(task, self.before.pop(task.id, None))

    def callbacks(self, also_before: Callable[[Any], None] | None = None) -> dict[str, Callable[[Any], None]]:
        """Keyword arguments for do_engine_steps; `also_before` runs before each task too."""
        if also_before is None:
            return {"will_complete_task": self.will_run, "did_complete_task": self.did_run}

        def before(task: Any) -> None:
            also_before(task)
            self.will_run(task)

        return {"will_complete_task": before, "did_complete_task": self.did_run}

    def run(self, task: Any) -> None:
        """Run one task outside do_engine_steps (a pass-through task), publishing what it wrote."""
        self.will_run(task)
        task.run()
        self.did_run(task)
