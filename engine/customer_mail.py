"""E-mails to the customer, who has no account: the acknowledgement with the reference number when a
complaint is received, and the final reply with a link to the satisfaction survey.

Like the staff notifications they are driven by the audit trail through a cursor (`start` events,
and `complete` events whose data carry `final_reply`) and queued in the same outbox, once per
instance (`dedupe_key`), so delivery retries and never double-sends. The survey link is signed with
the installation's secret key, so only the customer who got the mail can answer.

The public form lets anyone name any address, so one address gets at most PDCAFLOW_ACK_LIMIT
acknowledgements (3 by default; 0: no limit) in 24 hours: beyond that the complaint is filed as
always, but its acknowledgement is recorded as `withheld` in the outbox (never delivered) and in the case's audit
trail, so staff can see why the customer got no mail. Final replies, written by staff, are not limited.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from jinja2 import Environment, StrictUndefined
from sqlalchemy import select

from engine import clock
from engine.notifications import MAX_EVENT_AGE, audit_events_since, base_url
from engine.runtime.unit_of_work import audit_row
from engine.settings import current as current_settings
from engine.signing import secret_key, sign
from storage import outbox
from storage.db import Database
from storage.models import AuditEvent, ProcessInstance
from storage.scheduling import NotificationOutbox

CURSOR = "customer_events"
SURVEY_PURPOSE = "survey"
ACK = "customer_acknowledgement"
ACK_WINDOW = timedelta(days=1)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_text = Environment(autoescape=False, undefined=StrictUndefined)
_html = Environment(autoescape=True, undefined=StrictUndefined)

MESSAGES: dict[str, tuple[str, str, str]] = {
    # kind: (subject, text body, html body)
    "customer_acknowledgement": (
        "We received your complaint {{ reference }}",
        "Dear {{ name }},\n\nthank you for telling us. We received your complaint about {{ product }} and will "
        "look into it. Your reference number is {{ reference }}; please quote it if you contact us.\n\n"
        "Kind regards\nCustomer service",
        "<p>Dear {{ name }},</p><p>thank you for telling us. We received your complaint about {{ product }} and "
        "will look into it. Your reference number is <b>{{ reference }}</b>; please quote it if you contact us."
        "</p><p>Kind regards<br>Customer service</p>"),
    "customer_final_reply": (
        "Your complaint {{ reference }}: our reply",
        "Dear {{ name }},\n\n{{ reply }}\n\nHow did we handle your complaint? Two questions, one minute: "
        "{{ survey_link }}\n\nKind regards\nCustomer service",
        "<p>Dear {{ name }},</p><p>{{ reply }}</p><p>How did we handle your complaint? "
        '<a href="{{ survey_link }}">Two questions, one minute</a>.</p><p>Kind regards<br>Customer service</p>'),
}


def survey_link(instance_id: str, key: str | None = None) -> str:
    return f"{base_url()}/survey/{instance_id}/{sign(SURVEY_PURPOSE, instance_id, key or secret_key())}"


def notify_customers(db: Database, *, batch: int = 500, key: str | None = None) -> int:
    """Queue the customer e-mails for new `start`/`complete` events; returns how many were queued."""
    now = clock.now()
    limit = current_settings().ack_limit
    queued = 0
    with db.write() as session:
        cursor, events = audit_events_since(session, db, CURSOR, ("start", "complete"), now, batch)
        for event in events:
            cursor.value = max(cursor.value, event.id)
            if event.at < now - MAX_EVENT_AGE or not event.instance_id:
                continue
            submitted = (event.payload or {}).get("data") or {}
            if event.type == "complete" and not submitted.get("final_reply"):
                continue
            instance = session.get(ProcessInstance, event.instance_id)
            data: dict[str, Any] = dict(instance.data or {}) if instance is not None else {}
            address = str(data.get("customer_email") or "").strip()
            reference = data.get("reference") or (instance.business_key if instance is not None else None)
            if not _EMAIL.match(address) or not reference:
                continue  # not a customer case (or no address to write to)
            kind = ACK if event.type == "start" else "customer_final_reply"
            dedupe = f"{kind}:{event.instance_id}"
            if session.scalar(select(NotificationOutbox.id).where(NotificationOutbox.dedupe_key == dedupe)):
                continue
            context = {"name": data.get("customer_name") or "customer", "product": data.get("product") or "our product",
                       "reference": reference, "reply": submitted.get("final_reply", ""),
                       "survey_link": survey_link(event.instance_id, key)}
            subject, text, html = (env.from_string(t).render(context) for env, t in
                                   zip((_text, _text, _html), MESSAGES[kind], strict=True))
            withheld = (kind == ACK and limit > 0
                        and outbox.sent_to_recently(session, address, ACK, now - ACK_WINDOW) >= limit)
            session.add(NotificationOutbox(
                dedupe_key=dedupe, kind=kind, username=None, address=address, subject=subject[:255],
                body_text=text, body_html=f"<html><body>{html}</body></html>", task_id=event.task_id,
                instance_id=event.instance_id, state=outbox.WITHHELD if withheld else "pending", attempts=0,
                next_attempt_at=now, created_at=now,
                last_error=f"withheld: {limit} acknowledgements to this address in 24 hours" if withheld else None))
            if withheld:
                session.add(AuditEvent(**audit_row("acknowledgement_withheld", None, event.instance_id, None, {
                    "address": address, "limit": limit, "window": "P1D"})))
                continue
            queued += 1
        cursor.updated_at = now
    return queued
