"""SQLAlchemy 2 typed models.

The SpiffWorkflow state of an instance is one opaque JSON column; everything the inbox,
the scheduler and the dashboards read lives in projection tables with their own indexes,
so no read path has to deserialize a workflow.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; SQLite has no time zone, so re-attach UTC on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Credential generations (engine/credentials.py): a session or token carries the value it was
    # issued under and is refused once the user's value moved on. Logout bumps the session one;
    # a password change, deactivation or revoke-tokens bumps both.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    groups: Mapped[list[Group]] = relationship(secondary="user_group", back_populates="members")


class Group(Base):
    __tablename__ = "app_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    members: Mapped[list[User]] = relationship(secondary="user_group", back_populates="groups")


class UserGroup(Base):
    __tablename__ = "user_group"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("app_group.id", ondelete="CASCADE"), primary_key=True)


class ProcessDefinition(Base):
    """One deployed version of a process (kind 'bpmn') or decision (kind 'dmn')."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_definition_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str | None] = mapped_column(String(255))
    source_name: Mapped[str] = mapped_column(String(255))
    xml: Mapped[str] = mapped_column(Text)
    # sha256 of the file plus the decisions/called processes it was built with
    content_hash: Mapped[str] = mapped_column(String(64))
    spec_json: Mapped[bytes | None] = mapped_column(LargeBinary)
    dependencies: Mapped[list[Any]] = mapped_column(default=list)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str | None] = mapped_column(String(80))


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (
        Index("ix_instance_key_status", "process_key", "status"),
        # /engine-rest's instance list, newest first: its first page without sorting every instance (0022)
        Index("ix_instance_started", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    process_key: Mapped[str] = mapped_column(String(255))
    process_version: Mapped[int]
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime]
    started_by: Mapped[str | None] = mapped_column(String(80))
    ended_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The case as the inbox shows and searches it (engine/cases.py), written with every save of the
    # instance (migration 0016). `case_text` is the lower-cased search text (reference, title,
    # summary, customer), indexed by CASE_SEARCH_DDL below.
    case_title: Mapped[str | None] = mapped_column(String(255))
    case_summary: Mapped[str | None] = mapped_column(String(500))
    case_text: Mapped[str | None] = mapped_column(Text)
    # Camunda types of variables set through /engine-rest that their values cannot tell ({name: "Long"};
    # engine/runtime/variable_types.py), beside the data scripts see, not in it (migration 0021)
    variable_types: Mapped[dict[str, Any] | None]

    # Optimistic locking: every UPDATE checks and bumps `version`.
    __mapper_args__ = {"version_id_col": version}


# The case search index over process_instance.case_text (migration 0016; create_all through the DDL
# events below). Substring ("contains") search on both backends, as the inbox's `q` promises:
# - SQLite: an FTS5 table with the trigram tokenizer over the column (external content: the text
#   is stored once, in process_instance), kept in step by triggers whatever code writes instances;
#   `LIKE '%q%'` on it is answered from the index for 3 or more characters.
# - PostgreSQL: a GIN pg_trgm index on the column, which answers `LIKE '%q%'`. Where the extension
#   is not available or may not be created, no index is made and the search scans (same results).
# (SQLite's FTS5 tables, the virtual one and its shadow tables, are named CASE_SEARCH_TABLE*: no model
# describes them. A migration that rebuilds process_instance must run the FTS 'rebuild' command.)
CASE_SEARCH_TABLE = "case_search"
CASE_SEARCH_DDL: dict[str, list[str]] = {
    "sqlite": [
        """CREATE VIRTUAL TABLE IF NOT EXISTS case_search USING fts5(
            case_text, content='process_instance', tokenize='trigram')""",
        "INSERT INTO case_search(case_search) VALUES ('rebuild')",
        """CREATE TRIGGER trg_case_search_insert AFTER INSERT ON process_instance
        WHEN NEW.case_text IS NOT NULL
        BEGIN
            INSERT INTO case_search(rowid, case_text) VALUES (NEW.rowid, NEW.case_text);
        END""",
        """CREATE TRIGGER trg_case_search_delete AFTER DELETE ON process_instance
        WHEN OLD.case_text IS NOT NULL
        BEGIN
            INSERT INTO case_search(case_search, rowid, case_text) VALUES ('delete', OLD.rowid, OLD.case_text);
        END""",
        """CREATE TRIGGER trg_case_search_update AFTER UPDATE OF case_text ON process_instance
        WHEN OLD.case_text IS NOT NEW.case_text
        BEGIN
            INSERT INTO case_search(case_search, rowid, case_text)
                SELECT 'delete', OLD.rowid, OLD.case_text WHERE OLD.case_text IS NOT NULL;
            INSERT INTO case_search(rowid, case_text) SELECT NEW.rowid, NEW.case_text WHERE NEW.case_text IS NOT NULL;
        END""",
    ],
    "postgresql": [
        """DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
                CREATE INDEX IF NOT EXISTS ix_instance_case_text ON process_instance
                    USING gin (case_text gin_trgm_ops);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm could not be created: the case search scans instead of using an index';
        END $$""",
    ],
}
DROP_CASE_SEARCH_DDL: dict[str, list[str]] = {
    "sqlite": ["DROP TRIGGER IF EXISTS trg_case_search_update", "DROP TRIGGER IF EXISTS trg_case_search_delete",
               "DROP TRIGGER IF EXISTS trg_case_search_insert", "DROP TABLE IF EXISTS case_search"],
    "postgresql": ["DROP INDEX IF EXISTS ix_instance_case_text"],
}
for _dialect, _statements in CASE_SEARCH_DDL.items():
    for _statement in _statements:
        event.listen(ProcessInstance.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))


class HumanTask(Base):
    __tablename__ = "human_task"
    __table_args__ = (
        Index("ix_human_task_assignee_state", "assignee", "state", "due_at"),
        Index("ix_human_task_instance", "instance_id", "state"),
        Index("ix_human_task_state_due", "state", "due_at"),
        # "mine"/"completed" tabs: tasks completed by a user (0005)
        Index("ix_human_task_completed_by", "completed_by", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    process_key: Mapped[str] = mapped_column(String(255))
    spec_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(12))
    assignee: Mapped[str | None] = mapped_column(String(80))
    candidate_groups: Mapped[list[Any]] = mapped_column(default=list)
    priority: Mapped[int] = mapped_column(default=50)
    due_at: Mapped[datetime | None]
    follow_up_at: Mapped[datetime | None]
    form: Mapped[list[Any]] = mapped_column(default=list)
    documentation: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(80))
    submitted: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # what the step is about when its form edits a record (e.g. a multi-instance `action`): that
    # record as the task was created, {name: record} (0014); links an action to its task for the KPIs
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# leads' lists in inbox order without sorting every open task (0005)
Index("ix_human_task_state_order", HumanTask.state, HumanTask.due_at, HumanTask.priority.desc(), HumanTask.created_at,
      HumanTask.id)


class HumanTaskGroup(Base):
    """One row per candidate group of a task, so 'open in my groups' is an indexed join.

    `task_state`, `task_due_at`, `task_priority` and `task_created_at` copy the task's state and sort
    keys, kept in step by database triggers (TASK_GROUP_TRIGGERS: migrations 0005 and 0018) whatever
    code writes the task, so "open tasks of my groups" — in inbox order, or the overdue ones — is one
    range of `ix_human_task_group_inbox` instead of a look-up of every task the groups ever had.
    Readers still check the task row itself.
    """

    __tablename__ = "human_task_group"
    __table_args__ = (Index("ix_human_task_group_inbox", "group_name", "task_state", "task_id", "task_due_at",
                            "task_priority", "task_created_at"),)

    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(80), primary_key=True)
    task_state: Mapped[str | None] = mapped_column(String(12))
    task_due_at: Mapped[datetime | None]
    task_priority: Mapped[int | None]
    task_created_at: Mapped[datetime | None]


# Triggers that kept human_task_group.task_state equal to human_task.state (migration 0005; 0018
# replaces them with TASK_GROUP_TRIGGERS).
TASK_STATE_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TRIGGER trg_human_task_group_state AFTER INSERT ON human_task_group
        BEGIN
            UPDATE human_task_group SET task_state = (SELECT state FROM human_task WHERE id = NEW.task_id)
            WHERE task_id = NEW.task_id AND group_name = NEW.group_name;
        END""",
        """CREATE TRIGGER trg_human_task_state AFTER UPDATE OF state ON human_task
        WHEN OLD.state IS NOT NEW.state
        BEGIN
            UPDATE human_task_group SET task_state = NEW.state WHERE task_id = NEW.id;
        END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION pdcaflow_group_task_state() RETURNS trigger AS $$
        BEGIN
            IF TG_TABLE_NAME = 'human_task' THEN
                UPDATE human_task_group SET task_state = NEW.state WHERE task_id = NEW.id;
                RETURN NULL;
            END IF;
            NEW.task_state := (SELECT state FROM human_task WHERE id = NEW.task_id);
            RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER trg_human_task_group_state BEFORE INSERT ON human_task_group
        FOR EACH ROW EXECUTE FUNCTION pdcaflow_group_task_state()""",
        """CREATE TRIGGER trg_human_task_state AFTER UPDATE OF state ON human_task
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION pdcaflow_group_task_state()""",
    ],
}
DROP_TASK_STATE_TRIGGERS: dict[str, list[str]] = {
    "sqlite": ["DROP TRIGGER IF EXISTS trg_human_task_state", "DROP TRIGGER IF EXISTS trg_human_task_group_state"],
    "postgresql": ["DROP TRIGGER IF EXISTS trg_human_task_state ON human_task",
                   "DROP TRIGGER IF EXISTS trg_human_task_group_state ON human_task_group",
                   "DROP FUNCTION IF EXISTS pdcaflow_group_task_state()"],
}

# Triggers that keep human_task_group's copies of the task's state, due date, priority and creation
# time equal to human_task's (migration 0018, and create_all through the DDL events below).
TASK_GROUP_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TRIGGER trg_human_task_group_state AFTER INSERT ON human_task_group
        BEGIN
            UPDATE human_task_group SET (task_state, task_due_at, task_priority, task_created_at) =
                (SELECT state, due_at, priority, created_at FROM human_task WHERE id = NEW.task_id)
            WHERE task_id = NEW.task_id AND group_name = NEW.group_name;
        END""",
        """CREATE TRIGGER trg_human_task_state AFTER UPDATE OF state, due_at, priority, created_at ON human_task
        WHEN OLD.state IS NOT NEW.state OR OLD.due_at IS NOT NEW.due_at OR OLD.priority IS NOT NEW.priority
            OR OLD.created_at IS NOT NEW.created_at
        BEGIN
            UPDATE human_task_group SET task_state = NEW.state, task_due_at = NEW.due_at,
                task_priority = NEW.priority, task_created_at = NEW.created_at WHERE task_id = NEW.id;
        END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION pdcaflow_group_task_state() RETURNS trigger AS $$
        BEGIN
            IF TG_TABLE_NAME = 'human_task' THEN
                UPDATE human_task_group SET task_state = NEW.state, task_due_at = NEW.due_at,
                    task_priority = NEW.priority, task_created_at = NEW.created_at WHERE task_id = NEW.id;
                RETURN NULL;
            END IF;
            SELECT state, due_at, priority, created_at INTO NEW.task_state, NEW.task_due_at, NEW.task_priority,
                NEW.task_created_at FROM human_task WHERE id = NEW.task_id;
            RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER trg_human_task_group_state BEFORE INSERT ON human_task_group
        FOR EACH ROW EXECUTE FUNCTION pdcaflow_group_task_state()""",
        """CREATE TRIGGER trg_human_task_state AFTER UPDATE OF state, due_at, priority, created_at ON human_task
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.due_at IS DISTINCT FROM NEW.due_at
            OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.created_at IS DISTINCT FROM NEW.created_at)
        EXECUTE FUNCTION pdcaflow_group_task_state()""",
    ],
}
for _dialect, _statements in TASK_GROUP_TRIGGERS.items():
    for _statement in _statements:
        event.listen(HumanTaskGroup.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))


class Timer(Base):
    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    spec_id: Mapped[str] = mapped_column(String(255))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12), default="waiting")
    attempts: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(String(80))
    locked_until: Mapped[datetime | None]


class EventSubscription(Base):
    """What a message or signal reaches, so correlation needs no deserialization (Camunda's event
    subscriptions): a catch an instance waits on (`instance_id`), or a message/signal start event of
    the latest version of a process (`process_key`, no instance)."""

    __tablename__ = "event_subscription"
    __table_args__ = (Index("ix_event_subscription_name", "kind", "name", "correlation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"),
                                                    index=True)
    process_key: Mapped[str | None] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(12), default="message")  # "message" | "signal"
    name: Mapped[str] = mapped_column(String(255))
    correlation: Mapped[str | None] = mapped_column(String(255))


class Incident(Base):
    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    task_name: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(80))


class AuditEvent(Base):
    """Append-only trail: one row per state change."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str | None] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(40))
    instance_id: Mapped[str | None] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


# Scheduling tables live in their own module (they import Base); registering them here puts them in
# Base.metadata for create_all, truncate and Alembic.
import storage.api_tokens  # noqa: E402,F401,I001
import storage.scheduling  # noqa: E402,F401
import storage.kpi_facts  # noqa: E402,F401
import storage.schedules  # noqa: E402,F401
import storage.external_tasks  # noqa: E402,F401
import storage.drafts  # noqa: E402,F401
import storage.metrics  # noqa: E402,F401
import storage.case_notes  # noqa: E402,F401
