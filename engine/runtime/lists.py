"""Lists for /engine-rest (Camunda 7's task and process-instance queries and their counts), right at
any size: who may see what comes from engine.permissions (as a storage Viewer), filters, sorting and
paging run in SQL (storage/camunda_queries.py). A condition SQL cannot put portably (a comparison of
variable values inside the JSON data) is a Python `keep` predicate: the rows of one SQL-ordered
statement are then fetched in batches until the page is full, so nothing is skipped or capped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import Any

from engine.permissions import engine_rest_instance_viewer, task_viewer
from engine.runtime import projection
from engine.views import Actor, TaskView
from storage import camunda_queries as q
from storage import instances as store

BATCH = 500  # rows fetched at a time while a Python predicate filters them
TaskFilter, InstanceFilter = q.TaskFilter, q.InstanceFilter
TASK_SORT_FIELDS = tuple(q.TASK_SORTS)  # Camunda's sortBy names each list can order by
INSTANCE_SORT_FIELDS = tuple(q.INSTANCE_SORTS)


def tasks(conn: Any, actor: Actor, f: q.TaskFilter, sort: Sequence[tuple[str, bool]], offset: int,
          limit: int) -> list[TaskView]:
    rows = q.tasks(conn, task_viewer(actor), f, sort, offset, limit)
    groups = store.groups_of(conn, [r.id for r in rows])
    return [projection.task_view(r, groups.get(r.id, [])) for r in rows]


def count_tasks(conn: Any, actor: Actor, f: q.TaskFilter) -> int:
    return q.count_tasks(conn, task_viewer(actor), f)


def instances(conn: Any, actor: Actor, f: q.InstanceFilter, sort: Sequence[tuple[str, bool]], offset: int,
              limit: int, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """Unfinished instances the actor sees (id, process_key, process_version, business_key, status),
    `limit` of them after `offset`; with `keep`, only those whose data it keeps."""
    viewer = engine_rest_instance_viewer(actor)
    if keep is None:
        return [dict(r._mapping) for r in q.instances(conn, viewer, f, sort, offset, limit)]
    out: list[dict[str, Any]] = []
    with closing(_kept(conn, viewer, f, sort, keep)) as kept:  # a full page closes the cursor
        for row in kept:
            if offset:
                offset -= 1
                continue
            if len(out) == limit:
                break
            out.append(row)
    return out


def count_instances(conn: Any, actor: Actor, f: q.InstanceFilter,
                    keep: Callable[[dict[str, Any]], bool] | None = None) -> int:
    viewer = engine_rest_instance_viewer(actor)
    if keep is None:
        return q.count_instances(conn, viewer, f)
    return sum(1 for _ in _kept(conn, viewer, f, (), keep))


def _kept(conn: Any, viewer: q.Viewer, f: q.InstanceFilter, sort: Sequence[tuple[str, bool]],
          keep: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    """The rows `keep` keeps (their data left out), in the SQL order, fetched BATCH at a time."""
    with closing(q.instance_stream(conn, viewer, f, sort, BATCH)) as rows:
        for r in rows:
            row = dict(r._mapping)
            if keep(row.pop("data") or {}):
                yield row
