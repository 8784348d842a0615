"""Drafts of the web modeler: a quality lead's undeployed BPMN, one per process key (SQL in
storage/drafts.py). Only those who may deploy may keep drafts."""

from __future__ import annotations

from typing import Any

from engine import clock
from engine.database import Database
from engine.errors import FormValidationError
from engine.permissions import check_lead
from engine.views import Actor
from storage import drafts as store

MAX_DRAFT_BYTES = 5 * 1024 * 1024


def save(db: Database, actor: Actor, key: str, xml: str, base_version: int | None = None) -> None:
    check_lead(actor, "save process drafts")
    key = (key or "").strip()
    if not key or len(key) > 255:
        raise FormValidationError("a draft needs a process key", [{"field": "key", "message": "is required"}])
    if len(xml.encode("utf-8")) > MAX_DRAFT_BYTES:
        raise FormValidationError("the draft is too large", [{"field": "xml", "message": "is larger than 5 MB"}])
    with db.write() as session:
        store.save(session.connection(), actor.username, key, xml, base_version, clock.now())


def get(db: Database, actor: Actor, key: str) -> dict[str, Any] | None:
    check_lead(actor, "open process drafts")
    with db.read() as session:
        row = store.get(session.connection(), actor.username, key)
        return dict(row._mapping) if row else None


def of_user(db: Database, actor: Actor) -> list[dict[str, Any]]:
    if not actor.is_lead:
        return []
    with db.read() as session:
        return [dict(r._mapping) for r in store.of_user(session.connection(), actor.username)]


def discard(db: Database, actor: Actor, key: str) -> None:
    check_lead(actor, "discard process drafts")
    with db.write() as session:
        store.remove(session.connection(), actor.username, key)
