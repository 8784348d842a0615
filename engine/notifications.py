"""Notifications: in-app rows and an e-mail outbox delivered by SMTP with retries.

Enqueueing is idempotent (a `dedupe_key` per message and recipient, unique in both tables) and
happens in the same transaction as the event that causes it (an escalation level, or the audit
events "task_created"/"assign" read through a cursor), so nothing is lost and nothing is queued
twice. Delivery leases outbox rows (storage/leases.py via storage/outbox.py), marks a row `sent`
right after SMTP accepted it, and on failure backs off (engine/backoff.py) and keeps trying: a
message is never dropped. Each mail carries a Message-ID derived from its outbox row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, StrictUndefined
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

import storage.scheduling  # noqa: F401  (registers the scheduler tables on Base.metadata)
from engine import clock, heartbeat, mailer
from engine.backoff import Backoff
from engine.cases import cases_of_instances
from engine.settings import current as current_settings
from storage import outbox
from storage.db import Database
from storage.models import AuditEvent, Group, HumanTask, User, UserGroup
from storage.scheduling import InAppNotification, NotificationOutbox, SchedulerCursor, lock_cursor

log = logging.getLogger("pdcaflow.notifications")

KINDS = ("new_task", "task_assigned", "reminder", "overdue", "escalation")
LEAD_ROLES = ("quality_lead", "admin")  # who is told about tasks nobody (valid) was given

_text_env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_html_env = Environment(autoescape=True, undefined=StrictUndefined)

_FOOTER_TEXT = "\n\nOpen the task: {{ link }}\n-- PDCA Flow"
_FOOTER_HTML = '<p><a href="{{ link }}">Open the task</a></p><p style="color:#666">PDCA Flow</p>'
_DETAILS_TEXT = ("Task: {{ task }}\nProcess: {{ process }}{% if reference %} ({{ reference }}){% endif %}\n"
                 "{% if due %}Due: {{ due }}\n{% endif %}{% if assignee %}Assignee: {{ assignee }}\n{% endif %}")
_DETAILS_HTML = ("<ul><li>Task: <b>{{ task }}</b></li><li>Process: {{ process }}{% if reference %} "
                 "({{ reference }}){% endif %}</li>{% if due %}<li>Due: {{ due }}</li>{% endif %}"
                 "{% if assignee %}<li>Assignee: {{ assignee }}</li>{% endif %}</ul>")

TEMPLATES: dict[str, tuple[str, str]] = {
    # kind: (subject, lead sentence) -- the details and footer are shared
    "new_task": ("New task for {{ groups }}: {{ task }}",
                 "A new task is waiting for your group ({{ groups }})."),
    "task_offered": ("Task offered to you: {{ task }}",
                     "You are one of the people this task is offered to (candidate users)."),
    "unassigned_task": ("Unassigned task: {{ task }}",
                        "Nobody is offered this task (no assignee, candidate group or user): "
                        "it waits in the Unassigned queue until a quality lead assigns it."),
    "assignee_unavailable": ("Assignee not available: {{ task }}",
                             "This task was to go to {{ unavailable }}, who {{ why }}. "
                             "{% if groups %}It is offered to {{ groups }} instead{% else %}It waits in the "
                             "Unassigned queue{% endif %}: assign it to whoever should do it."),
    "task_assigned": ("Task assigned to you: {{ task }}",
                      "{{ by or 'Someone' }} assigned this task to you."),
    "reminder": ("Reminder: {{ task }} is due {{ due }}",
                 "This task is due soon."),
    "overdue": ("Overdue: {{ task }}",
                "This task was due {{ due }} and is not done yet."),
    "escalation": ("Escalation ({{ level }}): {{ task }} is overdue",
                   "This task has been overdue since {{ due }} and needs attention"
                   "{% if assignee %} (held by {{ assignee }}){% else %} (not claimed by anyone){% endif %}."),
}


@dataclass(frozen=True)
class Recipient:
    username: str
    email: str | None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def base_url() -> str:
    return current_settings().base_url


def render(kind: str, context: dict[str, Any]) -> Rendered:
    subject_t, lead_t = TEMPLATES[kind]
    ctx = {"task": "", "process": "", "reference": None, "due": None, "assignee": None, "groups": "",
           "by": None, "level": kind, "link": base_url(), "unavailable": None, "why": None, **context}
    subject = _text_env.from_string(subject_t).render(ctx).strip()
    text = _text_env.from_string(lead_t + "\n\n" + _DETAILS_TEXT + _FOOTER_TEXT).render(ctx)
    html = _html_env.from_string("<p>" + lead_t + "</p>" + _DETAILS_HTML + _FOOTER_HTML).render(ctx)
    return Rendered(subject[:255], text, f"<html><body>{html}</body></html>")


# ---------------------------------------------------------------------- recipients
def recipients(session: Session, *, users: list[str] | tuple[str, ...] = (), groups: list[str] | tuple[str, ...] = (),
               roles: list[str] | tuple[str, ...] = ()) -> list[Recipient]:
    """Active users named, in any of the groups, or with any of the roles; sorted, no duplicates."""
    conditions = []
    if users:
        conditions.append(User.username.in_(list(users)))
    if roles:
        conditions.append(User.role.in_(list(roles)))
    if groups:
        members = select(UserGroup.user_id).join(Group, Group.id == UserGroup.group_id).where(
            Group.name.in_(list(groups)))
        conditions.append(User.id.in_(members))
    if not conditions:
        return []
    rows = session.execute(select(User.username, User.email).where(User.active.is_(True), or_(*conditions))
                           .order_by(User.username)).all()
    return [Recipient(r[0], r[1]) for r in rows]


def enqueue(session: Session, kind: str, to: list[Recipient], context: dict[str, Any], dedupe: str, *,
            task_id: str | None = None, instance_id: str | None = None, now: datetime | None = None) -> list[str]:
    """Queue an in-app row and (if the user has an address) an e-mail per recipient; idempotent."""
    now = now or clock.now()
    rendered = render(kind, context)
    keys = {r.username: f"{dedupe}:{r.username}"[:200] for r in to}
    have_app = set(session.scalars(select(InAppNotification.dedupe_key).where(
        InAppNotification.dedupe_key.in_(list(keys.values()))))) if keys else set()
    have_mail = set(session.scalars(select(NotificationOutbox.dedupe_key).where(
        NotificationOutbox.dedupe_key.in_(list(keys.values()))))) if keys else set()
    notified = []
    for r in to:
        key = keys[r.username]
        notified.append(r.username)
        if key not in have_app:
            session.add(InAppNotification(dedupe_key=key, username=r.username, kind=kind, subject=rendered.subject,
                                          body=rendered.text, task_id=task_id, instance_id=instance_id,
                                          created_at=now))
        if r.email and key not in have_mail:
            session.add(NotificationOutbox(dedupe_key=key, kind=kind, username=r.username, address=r.email,
                                           subject=rendered.subject, body_text=rendered.text,
                                           body_html=rendered.html, task_id=task_id, instance_id=instance_id,
                                           state="pending", attempts=0, next_attempt_at=now, created_at=now))
    return notified


def task_context(session: Session, task: HumanTask, **extra: Any) -> dict[str, Any]:
    from storage.models import ProcessInstance

    instance = session.get(ProcessInstance, task.instance_id)
    groups = sorted(task.candidate_groups or [])
    return {"task": task.name, "process": task.process_key,
            "reference": instance.business_key if instance is not None else None,
            "due": task.due_at.strftime("%Y-%m-%d %H:%M UTC") if task.due_at else None,
            "assignee": task.assignee, "groups": ", ".join(groups),
            "link": f"{base_url()}/tasks/{task.id}", **extra}


# ---------------------------------------------------------------------- task events -> notifications
EVENTS_CURSOR = "notify_task_events"
LOOKBACK = 200  # ids below the cursor re-checked: PostgreSQL ids may commit out of order
MAX_EVENT_AGE = timedelta(days=1)  # a fresh database does not mail about last year's tasks


def audit_events_since(session: Session, cursor_name: str, types: tuple[str, ...], now: datetime,
                       batch: int) -> tuple[SchedulerCursor, list[AuditEvent]]:
    """Lock the named cursor and read the audit events of `types` from LOOKBACK ids below it on,
    oldest first; the caller moves `cursor.value` past what it handled (re-reads are deduplicated)."""
    cursor = lock_cursor(session, cursor_name, now)
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.id > cursor.value - LOOKBACK, AuditEvent.type.in_(types))
        .order_by(AuditEvent.id).limit(batch)).all()
    return cursor, list(events)


def notify_task_events(db: Database, *, batch: int = 500) -> int:
    """Turn new "task_created" and "assign" audit events into notifications; returns how many events."""
    now = clock.now()
    handled = 0
    with db.write() as session:
        cursor, events = audit_events_since(session, EVENTS_CURSOR, ("task_created", "assign"), now, batch)
        top = seen = cursor.value
        for event in events:
            top = max(top, event.id)
            if event.at < now - MAX_EVENT_AGE or not event.task_id:
                continue
            task = session.get(HumanTask, event.task_id)
            if task is None or task.state not in ("open", "claimed"):
                continue
            payload = event.payload or {}
            sends: list[tuple[str, list[Recipient]]] = []
            if event.type == "task_created":
                groups, users = list(payload.get("groups") or []), list(payload.get("candidate_users") or [])
                if payload.get("assignee"):
                    sends.append(("task_assigned", recipients(session, users=[payload["assignee"]])))
                elif groups or users:
                    if groups:
                        sends.append(("new_task", recipients(session, groups=groups)))
                    if users:  # a user also in a group is told once (the dedupe key is per event and user)
                        sends.append(("task_offered", recipients(session, users=users)))
                if payload.get("assignee_unavailable"):  # the model named someone who cannot have it
                    sends.append(("assignee_unavailable", recipients(session, roles=LEAD_ROLES)))
                elif not (payload.get("assignee") or groups or users):
                    # the Unassigned queue: the leads must assign it, nobody else will see it
                    sends.append(("unassigned_task", recipients(session, roles=LEAD_ROLES)))
            else:
                if not payload.get("to") or payload.get("to") == event.actor:
                    continue
                sends.append(("task_assigned", recipients(session, users=[payload["to"]])))
            held = payload.get("assignee_unavailable") or {}  # engine/assignment.py: {assignee, reason}
            extra = {"unavailable": held.get("assignee"),
                     "why": "is deactivated" if held.get("reason") == "deactivated" else "has no account"}
            for kind, to in sends:
                enqueue(session, kind, to, task_context(session, task, by=event.actor, **extra), f"ev{event.id}",
                        task_id=task.id, instance_id=task.instance_id, now=now)
            # look-back events were handled before (enqueue is idempotent); count only new ones
            handled += event.id > seen
        if events:
            # the cursor only moves past ids that are older than the look-back window's worth
            cursor.value = max(cursor.value, top)
            cursor.updated_at = now
    return handled


# ---------------------------------------------------------------------- outbox delivery
@dataclass
class OutboxPolicy:
    lease: timedelta = timedelta(minutes=5)
    backoff: timedelta = timedelta(seconds=60)
    backoff_cap: timedelta = timedelta(hours=1)
    batch: int = 50

    @classmethod
    def from_env(cls) -> OutboxPolicy:
        return cls(lease=heartbeat.lease_length(), backoff=timedelta(seconds=current_settings().mail_backoff))

    def delay(self, attempts: int) -> timedelta:
        return Backoff(self.backoff, self.backoff_cap).delay(attempts)


@dataclass
class OutboxResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def deliver_outbox(db: Database, worker: str, config: mailer.SmtpConfig | None = None,
                   policy: OutboxPolicy | None = None) -> OutboxResult:
    """Send due outbox mails; a failure backs that row off and the others go on."""
    config = config or mailer.SmtpConfig.from_env()
    policy = policy or OutboxPolicy.from_env()
    result = OutboxResult()
    while True:
        with db.write() as session:
            ids = outbox.claim_due(session, worker, now=clock.now(), lease=policy.lease, limit=policy.batch)
        if not ids:
            break
        for outbox_id in ids:
            with db.read() as session:
                row = outbox.held(session, outbox_id, worker)
                if row is None:
                    continue
                message = mailer.build_message(config, row.address, row.subject, row.body_text, row.body_html,
                                               f"<pdcaflow-{row.id}-{row.dedupe_key.split(':')[0]}@pdcaflow>")
            error: str | None = None
            state = "sent"
            try:
                mailer.send(config, message)
            except mailer.MailerNotConfigured:
                state = "skipped"
            except Exception as exc:  # SMTP down, refused, timeout...: retry later
                error = f"{type(exc).__name__}: {exc}"
            now = clock.now()
            # the outcome is written only while this worker still holds the row's lease
            with db.write() as session:
                if error is None:
                    outbox.finish(session, outbox_id, worker, state=state, sent_at=now if state == "sent" else None,
                                  error="SMTP_HOST is not set" if state == "skipped" else None)
                    if state == "sent":
                        result.sent += 1
                    else:
                        result.skipped += 1
                    continue
                attempts = row.attempts + 1
                retry_at = now + policy.delay(attempts)
                outbox.back_off(session, outbox_id, worker, attempts=attempts, retry_at=retry_at, error=error[:2000])
                result.failed += 1
                log.warning("mail to %s failed (attempt %d), retry at %s: %s", row.address, attempts,
                            retry_at.isoformat(), error)
        if len(ids) < policy.batch:
            break
    return result


# ---------------------------------------------------------------------- in-app reading
def notifications_for(db: Database, username: str, *, unread_only: bool = False, limit: int = 50,
                      offset: int = 0) -> dict[str, Any]:
    """`{"items": [{id, kind, subject, body, task_id, instance_id, case, created_at, read}], "unread": n}`;
    `case` is the case the notification is about (engine/cases.py: reference, title, summary), or None."""
    with db.read() as session:
        stmt = select(InAppNotification).where(InAppNotification.username == username)
        if unread_only:
            stmt = stmt.where(InAppNotification.read_at.is_(None))
        rows = session.scalars(stmt.order_by(InAppNotification.id.desc()).limit(limit).offset(offset)).all()
        unread = session.scalar(select(func.count()).select_from(InAppNotification).where(
            InAppNotification.username == username, InAppNotification.read_at.is_(None)))
        cases = cases_of_instances(session.connection(), (r.instance_id for r in rows if r.instance_id))
        items = [{"id": str(r.id), "kind": r.kind, "subject": r.subject, "body": r.body, "task_id": r.task_id,
                  "instance_id": r.instance_id, "case": _case(cases.get(r.instance_id)),
                  "created_at": r.created_at.isoformat(), "read": r.read_at is not None}
                 for r in rows]
    return {"items": items, "unread": int(unread or 0)}


def _case(case: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if case is None else {k: case[k] for k in ("reference", "title", "summary")}


def unread_count(db: Database, username: str) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(InAppNotification).where(
            InAppNotification.username == username, InAppNotification.read_at.is_(None))) or 0)


def mark_read(db: Database, username: str, ids: list[int | str] | None = None) -> int:
    """Mark the user's notifications (all, or the given ids) read; returns how many changed."""
    with db.write() as session:
        stmt = update(InAppNotification).where(InAppNotification.username == username,
                                               InAppNotification.read_at.is_(None))
        if ids is not None:
            stmt = stmt.where(InAppNotification.id.in_([int(i) for i in ids]))
        return session.execute(stmt.values(read_at=clock.now()).execution_options(
            synchronize_session=False)).rowcount or 0
