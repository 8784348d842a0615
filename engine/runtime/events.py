"""Messages and signals between instances, as Camunda 7 correlates them.

- A message goes to the instances waiting for it (matching the business key when one is given); when
  none waits, it starts an instance of each deployed process whose latest version has a message start
  event of that name (Camunda's `correlate`).
- A signal is a broadcast: every instance waiting for it receives it, and every process with a signal
  start event of that name starts an instance. Nobody listening is not an error.
- A message or signal an instance throws (intermediate throw, end event) that its own catches did not
  take is delivered here after the thrower was saved, in the same unit of work (`deliver_thrown`,
  called by engine/runtime/unit_of_work.py before the commit): so the thrower's step and its effect on
  the receivers commit together.

The subscriptions (which instance waits for what, which process starts on what) are the indexed
`event_subscription` rows that engine/runtime/projection.py keeps in step with every save, and that
`register_starts` writes when a process version is deployed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from engine.runtime import incidents, spiff
from engine.runtime.unit_of_work import UnitOfWork
from engine.views import Actor
from storage import instances as store

log = logging.getLogger("pdcaflow.events")
ENGINE = Actor.system("engine")
MAX_ROUNDS = 20  # events thrown by receivers are delivered too, up to this depth (no endless ping-pong)


def correlate_message(uow: UnitOfWork, name: str, correlation: str | None, data: dict[str, Any], actor: Actor,
                      *, exclude: str | None = None, only: set[str] | None = None,
                      types: Mapping[str, str] | None = None) -> list[str]:
    """Deliver a message to every instance waiting for it (`only`: to those of these instances); with
    none, and no instance named, start the processes it starts. `types`: the declared types of the
    variables (Loaded.declare_types)."""
    delivered: list[str] = []
    for instance_id in store.subscribed_instances(uow.conn, name, correlation, "message"):
        if instance_id == exclude or (only is not None and instance_id not in only):
            continue
        if _deliver(uow, instance_id, "message", name, data, actor, types):
            delivered.append(instance_id)
    if not delivered and only is None:
        delivered = start_by_event(uow, "message", name, data, actor, correlation, types)
    return delivered


def broadcast_signal(uow: UnitOfWork, name: str, data: dict[str, Any], actor: Actor,
                     *, exclude: str | None = None, types: Mapping[str, str] | None = None) -> list[str]:
    """Deliver a signal to every instance waiting for it and start every process it starts."""
    reached: list[str] = []
    for instance_id in store.subscribed_instances(uow.conn, name, None, "signal"):
        if instance_id == exclude:
            continue
        if _deliver(uow, instance_id, "signal", name, data, actor, types):
            reached.append(instance_id)
    return reached + start_by_event(uow, "signal", name, data, actor, None, types)


def _deliver(uow: UnitOfWork, instance_id: str, kind: str, name: str, data: dict[str, Any], actor: Actor,
             types: Mapping[str, str] | None = None) -> bool:
    """Deliver to one waiting instance and save it; False for a stale subscription. A failure while the
    instance takes the event is that instance's incident, never the sender's error."""
    loaded = uow.load(instance_id)
    if loaded.row.status in ("completed", "cancelled"):
        return False
    deliver = spiff.deliver_message if kind == "message" else spiff.deliver_signal
    try:
        if not deliver(loaded.workflow, name, dict(data)):
            return False  # a stale subscription; the instance's next save re-projects it
    except Exception as exc:  # a catch's expression failed (e.g. a correlation key): the receiver's incident
        log.warning("instance %s could not take %s '%s': %s", instance_id, kind, name, exc)
        incidents.on_loaded(loaded, None, exc, actor)
        uow.save(loaded)
        return True
    loaded.declare_types(data, types)
    loaded.audit(kind, actor, None, {"name": name, "data": data})
    uow.advance(loaded, actor)
    uow.save(loaded)
    return True


def start_by_event(uow: UnitOfWork, kind: str, name: str, data: dict[str, Any], actor: Actor,
                   business_key: str | None, types: Mapping[str, str] | None = None) -> list[str]:
    """Start an instance of the latest version of each process with a `kind` start event named `name`."""
    started: list[str] = []
    for key in store.event_start_processes(uow.conn, kind, name):
        definition = store.definition_ref(uow.conn, key, None)
        if definition is None:
            continue
        try:
            loaded = uow.start(definition, dict(data), actor, business_key, types)
        except spiff.EngineFailure as exc:
            log.warning("process %s v%s cannot start on %s '%s': %s", key, definition.version, kind, name,
                        spiff.message_of(exc))
            continue
        uow.advance(loaded, actor)  # up to the start event, which waits for the message/signal
        deliver = spiff.deliver_message if kind == "message" else spiff.deliver_signal
        try:
            took = deliver(loaded.workflow, name, dict(data))
        except Exception as exc:  # the new instance's incident, as for any instance taking an event
            incidents.on_loaded(loaded, None, exc, actor)
            took = True
        if not took:
            log.warning("process %s v%s did not take the %s '%s' it should start on", key, definition.version,
                        kind, name)
        loaded.audit(kind, actor, None, {"name": name, "data": data, "started": True})
        uow.advance(loaded, actor)
        uow.save(loaded)
        started.append(loaded.row.id)
    return started


def deliver_thrown(uow: UnitOfWork) -> None:
    """Deliver what the instances saved in this unit threw, then what the receivers threw in turn."""
    for _ in range(MAX_ROUNDS):
        if not uow.thrown:
            return
        uow.flush()  # the throwers' rows first: receivers are read (and may be saved again) after them
        pending, uow.thrown = uow.thrown, []
        for thrower, business_key, event in pending:
            if event.kind == "signal":
                reached = broadcast_signal(uow, event.name, event.data, ENGINE, exclude=thrower)
            else:
                reached = correlate_message(uow, event.name, business_key, event.data, ENGINE, exclude=thrower)
            log.info("%s '%s' thrown by instance %s reached %s", event.kind, event.name, thrower,
                     ",".join(reached) or "nobody")
    if uow.thrown:
        log.warning("events still thrown after %d rounds were dropped: %s", MAX_ROUNDS,
                    ", ".join(f"{e.kind} {e.name}" for _, _, e in uow.thrown))
        uow.thrown = []


def register_starts(uow: UnitOfWork, key: str, definition_id: int) -> None:
    """Record the message/signal start events of a newly deployed process version (they replace the
    previous version's: as in Camunda, only the latest version starts on an event)."""
    spec, _ = uow.definitions.specs(uow.session, definition_id)
    store.replace_event_starts(uow.conn, key, spiff.event_starts(spec))
