"""E-mails to the customer, who has no account.

- When a complaint is received (a `start` event): **the acknowledgement**, the one automatic
  message: the reference number, what happens next, and the link to the public status page.
- When a step's form carries a message for the customer (a `complete` event whose data hold one
  of CUSTOMER_MESSAGES): that message, **exactly as the employee wrote it** (the form's template
  already has the greeting), so the task page says precisely what the customer receives. The final
  reply gets the survey link added below it; the personal message of "Acknowledge the customer" is
  e-mailed only when its channel field says e-mail (after a call or a letter it is a record).

Like the staff notifications they are driven by the audit trail through a cursor and queued in the
same outbox, once per instance and kind (`dedupe_key`), so delivery retries and never double-sends.
The survey link is signed with the installation's secret key, so only the customer who got the
mail can answer.

The public form lets anyone name any address, so one recipient gets at most PDCAFLOW_ACK_LIMIT
acknowledgements (3 by default; 0: no limit) in a 24-hour window (the shared limiter,
engine/rate_limits.py, keyed on `recipient_key`: case and a `+tag` make no other recipient): beyond
that the complaint is filed as always, but its acknowledgement is recorded as `withheld` in the outbox
(never delivered) and in the case's audit trail, so staff can see why the customer got no mail.
Messages staff write are not limited.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape
from sqlalchemy import select

from engine import clock
from engine.notifications import MAX_EVENT_AGE, audit_events_since, base_url
from engine.rate_limits import Limit, reserve_in
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

ACKNOWLEDGEMENT = (  # (subject, text body, html body)
    "We received your complaint {{ reference }}",
    "Dear {{ name }},\n\nthank you for telling us. We received your complaint about {{ product }}. Your reference "
    "number is {{ reference }}; please quote it if you contact us.\n\nWhat happens next:\n"
    "- Within one working day someone from customer service contacts you personally.\n"
    "- We find out what caused the problem, put it right and tell you what we found and what we changed.\n\n"
    "You can see where your complaint is at any time: {{ status_link }} (with your reference number and this "
    "e-mail address).\n\nKind regards\nCustomer service",
    "<p>Dear {{ name }},</p><p>thank you for telling us. We received your complaint about {{ product }}. Your "
    "reference number is <b>{{ reference }}</b>; please quote it if you contact us.</p><p>What happens next:</p>"
    "<ul><li>Within one working day someone from customer service contacts you personally.</li>"
    "<li>We find out what caused the problem, put it right and tell you what we found and what we changed.</li>"
    '</ul><p><a href="{{ status_link }}">See where your complaint is</a> at any time (with your reference number '
    "and this e-mail address).</p><p>Kind regards<br>Customer service</p>")


# variable -> (mail kind, subject, channel variable that must say "email" or None, add the survey link)
CUSTOMER_MESSAGES: dict[str, tuple[str, str, str | None, bool]] = {
    "acknowledgement_message": ("customer_personal_message", "Your complaint {{ reference }}",
                                "acknowledgement_channel", False),
    "reply_message": ("customer_reply", "Your complaint {{ reference }}: our reply", None, False),
    "final_reply": ("customer_final_reply", "Your complaint {{ reference }}: our final reply", None, True),
    "rejection_reply": ("customer_decision", "Your complaint {{ reference }}: our decision", None, False),
}
SURVEY_TEXT = "\n\n--\nHow did we handle your complaint? Two questions, one minute: {link}"
SURVEY_HTML = '<hr><p>How did we handle your complaint? <a href="{link}">Two questions, one minute</a>.</p>'


def survey_link(instance_id: str, key: str | None = None) -> str:
    return f"{base_url()}/survey/{instance_id}/{sign(SURVEY_PURPOSE, instance_id, key or secret_key())}"


def status_link(reference: str) -> str:
    return f"{base_url()}/status?{urlencode({'reference': reference})}"


def _message_html(text: str) -> str:
    """The employee's text as HTML paragraphs, escaped: the same words as the text part."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(str(Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in p.split("\n"))))
                   for p in paragraphs)


def _mails(event_type: str, submitted: dict[str, Any], context: dict[str, Any], instance_id: str,
           key: str | None) -> list[tuple[str, str, str, str]]:
    """(kind, subject, text, html) of each mail the event sends the customer."""
    if event_type == "start":
        subject, text, html = (env.from_string(t).render(context) for env, t in
                               zip((_text, _text, _html), ACKNOWLEDGEMENT, strict=True))
        return [("customer_acknowledgement", subject, text, html)]
    out = []
    for variable, (kind, subject, channel, survey) in CUSTOMER_MESSAGES.items():
        message = submitted.get(variable)
        if not isinstance(message, str) or not message.strip():
            continue
        if channel is not None and submitted.get(channel, "email") != "email":
            continue  # said on the phone or sent by letter: the form is the record, nothing is mailed
        text, html = message.strip(), _message_html(message)
        if survey:
            link = survey_link(instance_id, key)
            text += SURVEY_TEXT.format(link=link)
            html += SURVEY_HTML.format(link=escape(link))
        out.append((kind, _text.from_string(subject).render(context), text, html))
    return out


def recipient_key(address: str) -> str:
    """Who an address reaches, for counting only (mail still goes to the address as written): lower
    case, without a `+tag` in the local part (`Anna+1@Example.com` -> `anna@example.com`)."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return domain
    return f"{local.split('+', 1)[0] or local}@{domain}"


def notify_customers(db: Database, *, batch: int = 500, key: str | None = None) -> int:
    """Queue the customer e-mails for new `start`/`complete` events; returns how many were queued."""
    now = clock.now()
    limit = current_settings().ack_limit
    per_recipient = Limit("ack", limit, ACK_WINDOW)
    queued = 0
    with db.write() as session:
        cursor, events = audit_events_since(session, CURSOR, ("start", "complete"), now, batch)
        for event in events:
            cursor.value = max(cursor.value, event.id)
            if event.at < now - MAX_EVENT_AGE or not event.instance_id:
                continue
            submitted = (event.payload or {}).get("data") or {}
            if event.type == "complete" and not any(v in submitted for v in CUSTOMER_MESSAGES):
                continue
            instance = session.get(ProcessInstance, event.instance_id)
            data: dict[str, Any] = dict(instance.data or {}) if instance is not None else {}
            address = str(data.get("customer_email") or "").strip()
            reference = data.get("reference") or (instance.business_key if instance is not None else None)
            if not _EMAIL.match(address) or not reference:
                continue  # not a customer case (or no address to write to)
            context = {"name": data.get("customer_name") or "customer", "product": data.get("product") or "our product",
                       "reference": reference, "status_link": status_link(str(reference))}
            for kind, subject, text, html in _mails(event.type, submitted, context, event.instance_id, key):
                dedupe = f"{kind}:{event.instance_id}"
                if session.scalar(select(NotificationOutbox.id).where(NotificationOutbox.dedupe_key == dedupe)):
                    continue
                withheld = (kind == ACK and limit > 0
                            and not reserve_in(session, per_recipient, recipient_key(address), now))
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
