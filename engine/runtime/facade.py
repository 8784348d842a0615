"""`Runtime`: the service API. Each call is one unit of work (engine/runtime/unit_of_work.py) or one
read; callers get plain views (engine/views.py), never SpiffWorkflow objects or rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import clock, decisions, external_tasks
from engine.definitions import DefinitionStore, DeployReport, DeployResult, collect_files
from engine.dmn import DecisionEvaluationError
from engine.errors import DecisionFailedError, DeploymentError, InvalidStateError, NotFoundError
from engine.forms import check_start_data
from engine.permissions import check_lead, check_lead_or_worker
from engine.runtime import camunda, diagram, events, lists, projection, scopes, spiff, tasks, timers
from engine.runtime.unit_of_work import UnitOfWork, unit_of_work
from engine.sandbox import SandboxScriptEngine
from engine.views import Actor, InstanceView, TaskView
from storage import instances as store
from storage.camunda_queries import InstanceFilter, TaskFilter
from storage.db import Database


class Runtime:
    def __init__(self, db: Database, definitions: DefinitionStore | None = None) -> None:
        self.db = db
        self.definitions = definitions or DefinitionStore()
        self.script_engine = SandboxScriptEngine(context_of=camunda.script_context)

    def unit_of_work(self) -> Any:
        """A write transaction for engine services (see unit_of_work.unit_of_work)."""
        return unit_of_work(self.db, self.definitions, self.script_engine)

    # ------------------------------------------------------------------ definitions
    def deploy(self, files: list[tuple[str, bytes]], actor: Actor | None = None, *,
               all_or_nothing: bool = False) -> DeployReport:
        """Deploy the files that are valid; the report lists results and every problem. With
        `all_or_nothing` (a Camunda deployment, `deploy_paths`), any problem raises DeploymentError
        and deploys nothing."""
        with self.unit_of_work() as uow:
            report = self.definitions.deploy(uow.session, files, actor.username if actor else None)
            if all_or_nothing and report.problems:
                raise DeploymentError(report.problems)
            self._audit_deploys(uow, report.results, actor)
        return report

    def validate(self, files: list[tuple[str, bytes]], actor: Actor) -> DeployReport:
        """The checks `deploy` runs, without deploying (quality leads and admins, who may deploy)."""
        check_lead(actor, "validate process models")
        with self.db.read() as session:
            return self.definitions.check(session, files)

    def deploy_paths(self, paths: Iterable[Path | str], actor: Actor | None = None) -> list[DeployResult]:
        """Deploy files/folders; raise DeploymentError (deploying nothing) if any file has a problem."""
        files = [(str(p), Path(p).read_bytes()) for p in collect_files(paths)]
        return self.deploy(files, actor, all_or_nothing=True).results

    @staticmethod
    def _audit_deploys(uow: UnitOfWork, results: list[DeployResult], actor: Actor | None) -> None:
        uow.session.flush()
        for result in results:
            if not result.unchanged:
                uow.audit("deploy", actor, None, None, {"key": result.key, "version": result.version, "kind": result.kind})
                if result.kind == "bpmn":
                    definition = store.definition_ref(uow.conn, result.key, result.version)
                    events.register_starts(uow, result.key, definition.id)

    def definitions_list(self, all_versions: bool = False) -> list[dict[str, Any]]:
        with self.db.read() as session:
            rows = DefinitionStore.all_versions(session) if all_versions else DefinitionStore.latest_all(session)
            return [{"key": d.key, "version": d.version, "name": d.name, "kind": d.kind,
                     "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "source_name": d.source_name}
                    for d in rows]

    def definition_xml(self, key: str, version: int | None = None) -> str:
        with self.db.read() as session:
            definition = (DefinitionStore.latest(session, key) if version is None
                          else DefinitionStore.version(session, key, version))
            if definition is None:
                raise NotFoundError(_not_deployed(key, version))
            return definition.xml

    def decision_xml(self, key: str, version: int | None = None) -> str:
        """The DMN document a decision was deployed in (latest version unless given)."""
        with self.db.read() as session:
            definition = (DefinitionStore.latest(session, key, "dmn") if version is None
                          else DefinitionStore.version(session, key, version, "dmn"))
            if definition is None:
                raise NotFoundError(f"decision '{key}'" + (f" version {version}" if version else "")
                                    + " is not deployed")
            return definition.xml

    def decision_inputs(self, key: str) -> list[dict[str, str]]:
        """The inputs of a deployed decision, for trying it ({name, label, type})."""
        return decisions.decision_inputs(self.decision_xml(key), key)

    def evaluate_decision(self, key: str, variables: dict[str, Any] | None, actor: Actor,
                          version: int | None = None) -> list[dict[str, Any]]:
        """Evaluate a deployed decision (latest version unless given): one {output: value} per rule
        the hit policy keeps, or the aggregate of COLLECT with an aggregator. Any signed-in user may."""
        xml = self.decision_xml(key, version)
        try:
            return decisions.evaluate_rows(xml, key, variables or {})
        except DecisionEvaluationError as exc:
            raise DecisionFailedError(f"decision '{key}' failed: {exc}") from None

    # ------------------------------------------------------------------ instances
    def start(self, key: str, data: dict[str, Any] | None, actor: Actor, *, version: int | None = None,
              business_key: str | None = None, uow: UnitOfWork | None = None,
              types: Mapping[str, str] | None = None) -> InstanceView:
        """Start an instance. Given `uow`, inside the caller's unit of work, so the caller's own
        writes (e.g. the scheduler consuming a timer-start slot) commit or roll back with it. `types`:
        the Camunda types the variables were sent with (/engine-rest; engine/runtime/variable_types.py),
        here and in the other calls that take it."""
        if uow is None:
            with self.unit_of_work() as own:
                return self._start_in(own, key, data, actor, version, business_key, types)
        return self._start_in(uow, key, data, actor, version, business_key, types)

    def _start_in(self, uow: UnitOfWork, key: str, data: dict[str, Any] | None, actor: Actor, version: int | None,
                  business_key: str | None, types: Mapping[str, str] | None = None) -> InstanceView:
        data = dict(data or {})
        # id, key and version only: the definition's XML and serialized spec stay in the database
        definition = store.definition_ref(uow.conn, key, version)
        if definition is None:
            raise NotFoundError(_not_deployed(key, version))
        # the start event's form checks and coerces its fields; other variables pass (programmatic starts)
        data = check_start_data(self.definitions.start_form(uow.session, definition.id), data)
        reference = data.get("reference")
        try:
            loaded = uow.start(definition, data, actor,
                               business_key or (str(reference) if reference not in (None, "") else None), types)
        except spiff.EngineFailure as exc:
            # e.g. an element id that collides with SpiffWorkflow's own 'Start'/'End' task specs
            raise InvalidStateError(f"process '{key}' v{definition.version} cannot start: "
                                    f"{spiff.message_of(exc)}") from exc
        uow.advance(loaded, actor)
        uow.save(loaded)
        return projection.instance_view(uow, loaded)

    def instance(self, instance_id: str) -> InstanceView:
        with self.db.read() as session:
            view = projection.read_instance_view(session.connection(), instance_id)
        if view is None:
            raise NotFoundError(f"instance {instance_id} not found")
        return view

    def element_states(self, instance_id: str) -> dict[str, Any]:
        """The instance's diagram state: each element's state and the sequence flows taken
        (engine/runtime/diagram.py). A read: the workflow is restored, nothing is written."""
        with self.db.read() as session:
            row, loaded = self._restored(session, instance_id)
            xml = self.definitions.xml_of(session, row.definition_id)
        return diagram.instance_diagram(xml, loaded.workflow)

    def _restored(self, session: Any, instance_id: str) -> tuple[Any, Any]:
        """(the instance row, its restored workflow) for a read; NotFoundError when it does not exist."""
        row = store.instance_row(session.connection(), instance_id)
        if row is None:
            raise NotFoundError(f"instance {instance_id} not found")
        return row, UnitOfWork(session, self.definitions, self.script_engine).restore(row._mapping)

    def active_properties(self, instance_id: str, name: str) -> list[str]:
        """The camunda:property NAME of the elements the instance is at now (e.g. `customer.stage`,
        what the public status page shows). A read: the workflow is restored, nothing is written."""
        with self.db.read() as session:
            _, loaded = self._restored(session, instance_id)
        return spiff.active_element_properties(loaded.workflow, name)

    def element_counts(self, key: str, version: int | None = None, limit: int = 500) -> dict[str, Any]:
        """Per element of a process version, how many unfinished instances have a token there
        (`running`) or an open incident there (`incidents`), over its newest `limit` unfinished
        instances: {"version", "counts": {element id: {running, incidents}}, "instances", "truncated"}."""
        with self.db.read() as session:
            definition = (DefinitionStore.latest(session, key) if version is None
                          else DefinitionStore.version(session, key, version))
            if definition is None:
                raise NotFoundError(_not_deployed(key, version))
            rows = store.unfinished_instances_of(session.connection(), definition.id, limit)
            uow = UnitOfWork(session, self.definitions, self.script_engine)
            counts: dict[str, dict[str, int]] = {}
            for row in rows:
                diagram.add_counts(counts, uow.restore(row._mapping).workflow)
            return {"version": definition.version, "counts": counts, "instances": len(rows),
                    "truncated": len(rows) >= limit}

    def instances(self, *, key: str | None = None, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
        with self.db.read() as session:
            rows = store.list_instances(session.connection(), key=key, status=status, limit=limit, offset=offset)
            return [dict(r._mapping) for r in rows]

    def cancel(self, instance_id: str, actor: Actor, reason: str = "") -> InstanceView:
        check_lead(actor, "cancel an instance")
        with self.unit_of_work() as uow:
            loaded = uow.load(instance_id)
            if loaded.row.status in ("completed", "cancelled"):
                raise InvalidStateError(f"instance {instance_id} is already {loaded.row.status}")
            spiff.cancel(loaded.workflow)
            loaded.row.status = "cancelled"
            loaded.row.ended_at = clock.now()
            open_ids = [i.id for i in store.open_incidents(uow.conn, instance_id)]
            store.resolve_incidents(uow.conn, open_ids, loaded.row.ended_at, actor.username)
            loaded.audit("cancel", actor, None, {"reason": reason})
            uow.save(loaded)
        return self.instance(instance_id)

    def set_variables(self, instance_id: str, actor: Actor, modifications: dict[str, Any],
                      deletions: Iterable[str] = (), types: Mapping[str, str] | None = None) -> None:
        """Set and remove process variables of an unfinished instance (Camunda's modifyVariables): the whole
        process scope sees them, a task's own locals of those names are left alone, and the workflow
        does not move on. Quality leads, admins and workers (e.g. a Camunda worker's setVariables)."""
        check_lead_or_worker(actor, "change the variables of an instance")
        deletions = sorted(set(deletions))
        with self.unit_of_work() as uow:
            loaded = uow.load(instance_id)
            if loaded.row.status in ("completed", "cancelled"):
                raise NotFoundError(f"instance {instance_id} has ended; its variables can no longer change")
            scopes.apply(loaded.workflow, dict(modifications), deletions)
            loaded.declare_types(modifications, types)
            loaded.audit("variables_set", actor, None, {"set": sorted(modifications), "removed": deletions})
            uow.save(loaded)

    def retry(self, instance_id: str, actor: Actor, data: dict[str, Any] | None = None) -> InstanceView:
        """Run the failed task again, optionally with corrected data, after the cause is fixed."""
        check_lead(actor, "retry an incident")
        with self.unit_of_work() as uow:
            loaded = uow.load(instance_id)
            if loaded.row.status != "incident":
                raise InvalidStateError(f"instance {instance_id} is {loaded.row.status}; there is no incident to retry")
            open_ids = [i.id for i in store.open_incidents(uow.conn, instance_id)]
            if not open_ids:
                raise InvalidStateError(f"instance {instance_id} has no open incident to retry")
            store.resolve_incidents(uow.conn, open_ids, clock.now(), actor.username)
            external_tasks.rearm_exhausted(uow, instance_id)  # failed external tasks: one more attempt
            spiff.retry_failed(loaded.workflow, data)
            loaded.row.status = "running"
            loaded.audit("retry", actor, None, {"data": data or {}})
            # A timer that came due while the instance was stuck fires here, once, recorded as the
            # scheduler would record it (its projection row, perhaps 'failed', is closed).
            fired = uow.fire_timers(loaded, actor, "retry")
            if fired:
                store.finish_timers_of_tasks(uow.conn, instance_id, fired)
            uow.save(loaded)
        return self.instance(instance_id)

    # ------------------------------------------------------------------ human tasks
    def tasks(self, actor: Actor, *, state: str | None = None, mine: bool = False, instance_id: str | None = None,
              process_key: str | None = None, limit: int = 200, in_groups: bool = False,
              offset: int = 0, overdue: bool = False, unassigned: bool = False, q: str | None = None,
              sort: str = "due", group: str | None = None, assignee: str | None = None, due: str | None = None,
              min_priority: int | None = None) -> list[TaskView]:
        """Tasks the actor may see: assigned to them, or in one of their groups (leads see all).

        `mine`: only tasks assigned to or completed by the actor; `in_groups`: only tasks of the
        actor's candidate groups (the inbox's "my groups" tab, for leads too). Open or claimed tasks
        unless `state` is given; due first (undated last), then priority, then age; at most `limit`
        after skipping `offset`. `overdue`: only open/claimed tasks whose due date has passed (for a
        quality lead: every overdue task of every process). `unassigned`: only open tasks with no
        assignee and no candidates (the quality leads' Unassigned queue; empty for anyone else).
        `q`: search in the task's case (reference, title, summary, customer; engine/cases.py), from the
        case search index; `sort`: due (default), priority, created (newest first) or reference.
        Filters: `group` (a candidate group), `assignee` (who holds it), `due` (overdue, today, week
        or none: see tasks.DUE_FILTERS), `min_priority`. Each task carries `case` and `process_name`.
        """
        with self.db.read() as session:
            return tasks.list_tasks(session.connection(), actor, state=state, mine=mine, instance_id=instance_id,
                                    process_key=process_key, limit=limit, in_groups=in_groups, offset=offset,
                                    overdue=overdue, unassigned=unassigned, q=q, sort=sort, group=group,
                                    assignee=assignee, due=due, min_priority=min_priority)

    # /engine-rest's lists (engine/runtime/lists.py): filtered, sorted, paged and counted in SQL
    def query_tasks(self, actor: Actor, f: TaskFilter, sort: Sequence[tuple[str, bool]] = (), offset: int = 0,
                    limit: int = 200) -> list[TaskView]:
        """Open and claimed tasks the actor may see that meet `f` (Camunda's task query)."""
        with self.db.read() as session:
            return lists.tasks(session.connection(), actor, f, sort, offset, limit)

    def count_tasks(self, actor: Actor, f: TaskFilter) -> int:
        with self.db.read() as session:
            return lists.count_tasks(session.connection(), actor, f)

    def query_instances(self, actor: Actor, f: InstanceFilter, sort: Sequence[tuple[str, bool]] = (),
                        offset: int = 0, limit: int = 100,
                        keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Unfinished instances the actor may see that meet `f` (and whose data `keep` keeps)."""
        with self.db.read() as session:
            return lists.instances(session.connection(), actor, f, sort, offset, limit, keep)

    def count_instances(self, actor: Actor, f: InstanceFilter,
                        keep: Callable[[dict[str, Any]], bool] | None = None) -> int:
        with self.db.read() as session:
            return lists.count_instances(session.connection(), actor, f, keep)

    def task(self, task_id: str, actor: Actor) -> TaskView:
        with self.db.read() as session:
            return tasks.read_task(session.connection(), task_id, actor)

    def claim(self, task_id: str, actor: Actor) -> TaskView:
        with self.unit_of_work() as uow:
            return tasks.claim(uow, task_id, actor)

    def unclaim(self, task_id: str, actor: Actor) -> TaskView:
        with self.unit_of_work() as uow:
            return tasks.unclaim(uow, task_id, actor)

    def assign(self, task_id: str, actor: Actor, assignee: str | None) -> TaskView:
        with self.unit_of_work() as uow:
            return tasks.assign(uow, task_id, actor, assignee)

    def set_due_date(self, task_id: str, actor: Actor, due: datetime | str | None) -> TaskView:
        with self.unit_of_work() as uow:
            return tasks.set_due_date(uow, task_id, actor, due)

    def complete(self, task_id: str, actor: Actor, data: dict[str, Any] | None = None, *,
                 history: bool = True, types: Mapping[str, str] | None = None) -> InstanceView:
        """Complete a task; the instance's view afterwards. `history=False`: a caller that uses only the
        tasks and data (what comes next) skips reading the instance's audit and incidents back."""
        with self.unit_of_work() as uow:
            return tasks.complete(uow, task_id, actor, data, history=history, types=types)

    # ------------------------------------------------------------------ events
    def correlate_message(self, name: str, correlation: str | None, data: dict[str, Any] | None,
                          actor: Actor, instance_ids: Iterable[str] | None = None,
                          types: Mapping[str, str] | None = None) -> list[str]:
        """Deliver a message to every instance waiting for it (matching the business key, if given; only
        to `instance_ids` when given: /engine-rest's processInstanceId and correlationKeys); when none
        waits (and no instance was named), start the processes with a message start event of that name
        (engine/runtime/events.py)."""
        only = set(instance_ids) if instance_ids is not None else None
        with self.unit_of_work() as uow:
            delivered = events.correlate_message(uow, name, correlation, dict(data or {}), actor, only=only,
                                                 types=types)
            if not delivered:
                raise NotFoundError(f"no instance is waiting for message '{name}'"
                                    + (f" with correlation '{correlation}'" if correlation else "")
                                    + " and no process starts on it")
        return delivered

    def start_by_message(self, name: str, business_key: str | None, data: dict[str, Any] | None,
                         actor: Actor, types: Mapping[str, str] | None = None) -> list[InstanceView]:
        """Start an instance of each process whose latest version has a message start event `name`
        (Camunda's correlation to a process definition); none is not an error here (the caller decides)."""
        with self.unit_of_work() as uow:
            started = events.start_by_event(uow, "message", name, dict(data or {}), actor, business_key, types)
        return [self.instance(i) for i in started]

    def message_candidates(self, name: str, correlation: str | None) -> list[tuple[str, dict[str, Any]]]:
        """Instances waiting for the message (matching the business key, if given), with their data."""
        with self.db.read() as session:
            conn = session.connection()
            out = []
            for instance_id in store.subscribed_instances(conn, name, correlation):
                row = store.instance_row(conn, instance_id)
                if row is not None and row.status not in ("completed", "cancelled"):
                    out.append((instance_id, dict(row.data or {})))
            return out

    def signal(self, name: str, data: dict[str, Any] | None, actor: Actor,
               types: Mapping[str, str] | None = None) -> list[str]:
        """Broadcast a signal: every instance waiting for it receives it, every process with a signal start
        event of that name starts. Returns the instances reached and started (none is not an error)."""
        with self.unit_of_work() as uow:
            return events.broadcast_signal(uow, name, dict(data or {}), actor, types=types)

    def fire_due_timers(self, worker: str = "runtime", policy: timers.TimerPolicy | None = None
                        ) -> timers.TimerPassResult:
        """One scheduler pass over due timers (engine/runtime/timers.py, the only firing path)."""
        return timers.fire_due_timers(self, worker, policy)

    def fire_timer(self, instance_id: str, worker: str, timer_ids: list[int]) -> int:
        """Fire timers `worker` has leased on one instance; 0 when it no longer holds any of them."""
        return timers.fire_claimed(self, worker, {instance_id: timer_ids}).fired


def _not_deployed(key: str, version: int | None) -> str:
    return f"process '{key}'" + (f" version {version}" if version else "") + " is not deployed"
