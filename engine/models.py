"""The database tables (SQLAlchemy 2, typed `Mapped[]`).

A case's live workflow state is one row in `cases` (the spec is kept out of it: it lives
once per definition in `process_definitions`). Everything people and reports ask about
(open tasks, due timers, history, links, outgoing events) sits on rows of its own,
written in the same transaction as the state it mirrors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.status import CaseStatus, DeliveryStatus, TaskState, TimerStatus, WebhookStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the engine stores UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# BigInteger ids that are still autoincrementing INTEGER PRIMARY KEY on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    groups: Mapped[list[Group]] = relationship(secondary="user_groups", lazy="selectin", order_by=Group.id)

    @property
    def group_ids(self) -> list[str]:
        return [g.id for g in self.groups]


class UserGroup(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the token is kept: a leaked database yields no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class ProcessDefinition(Base):
    """One deployed version of a process: its BPMN, the DMN it calls and its forms."""

    __tablename__ = "process_definitions"
    __table_args__ = (
        UniqueConstraint("process_key", "version"),
        UniqueConstraint("process_key", "content_hash", name="uq_process_definitions_key_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    # {"bpmn": {file: xml}, "dmn": {file: xml}, "forms": {key: schema}}: all a case needs.
    bundle: Mapped[dict[str, Any]]
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str | None] = mapped_column(String(100))


class Counter(Base):
    """Per-year case-number sequences, advanced inside the transaction that uses them."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definitions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.ACTIVE, index=True)
    referring_group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[str] = mapped_column(Text, default="")
    consent: Mapped[str | None] = mapped_column(String(16))
    consent_recorded_at: Mapped[datetime | None]
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Live workflow state without spec or finished history; see engine.runtime.
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    # Optimistic concurrency: every save is UPDATE ... WHERE version = <loaded version>.
    version: Mapped[int] = mapped_column(default=1)

    # Loaded only when asked for: the bundle is large and the spec cache usually has it.
    definition: Mapped[ProcessDefinition] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """Projection of a case's open (and past) user tasks: the work queue reads this."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        # The work queue (GET /api/tasks, and the staff queue page in engine.queue): it covers every
        # column the page filters and sorts on, so a page is chosen from the index alone, also with
        # 100,000 open tasks in one group (migration 0002 widened it from state, group_id, due_at).
        Index("ix_human_tasks_queue", "state", "group_id", "due_at", "created_at", "id", "assignee_id", "step",
              "process_key", "case_id"),
        Index("ix_human_tasks_assignee", "assignee_id", "state"),
    )

    # The SpiffWorkflow task id, stable for the life of the task.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str | None] = mapped_column(String(100))
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    form_key: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=TaskState.OPEN)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    draft: Mapped[dict[str, Any] | None]

    case: Mapped[Case] = relationship(lazy="joined")


class CaseEvent(Base):
    """Append-only history of a case: who did what, when, with what data."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(100))
    step_name: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any] | None]

    actor: Mapped[User | None] = relationship(lazy="joined")


class Timer(Base):
    """A waiting timer of a case; the sweep claims rows whose due time has passed."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    step: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=TimerStatus.PENDING)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class CaseLink(Base):
    """Emergency case → the multi-agency case it handed over to."""

    __tablename__ = "case_links"
    __table_args__ = (UniqueConstraint("from_case_id", "to_case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    to_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class CaseMember(Base):
    """Groups that joined a case's support meeting (支援会議) and may see its data."""

    __tablename__ = "case_members"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]


class OutboxEvent(Base):
    """Outgoing events, written with the state change; delivered later (webhooks).

    `delivered_at` is when the delivery sweep fanned the event out to the subscriptions that
    asked for it (one `webhook_deliveries` row each); NULL while it has not yet."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # Minimal payload: ids, case number, step; never personal data.
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class WebhookSubscription(Base):
    """Another system's endpoint and the event types it wants (outgoing webhooks)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]]
    description: Mapped[str] = mapped_column(String(500), default="")
    # whsec_ secrets sign every message; after a rotation the previous one signs too until
    # `previous_valid_until`, so receivers can switch without losing a message.
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_valid_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Since when every attempt has failed (NULL after a success): five days of it disable the subscription.
    failing_since: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One outbox event for one subscription: retried until delivered or dead.

    A sweeper claims a row by setting `claimed_by`/`claimed_until` (a lease) and commits before it
    sends, so no transaction is held during HTTP; a sweeper killed mid-send leaves the row to be
    claimed again once the lease ends (at least once)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # In order per case and subscription: the oldest pending event of a pair goes first.
        Index("ix_webhook_deliveries_order", "subscription_id", "case_id", "status", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    event: Mapped[OutboxEvent] = relationship(lazy="joined")


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt (time, status, latency, error)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_subscription", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(50))
    attempt: Mapped[int]
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)


class AuditHead(Base):
    """The end of one audit chain (`id` is the chain's number): locked by every append to that
    chain, so each chain stays a line; unrelated cases append to different chains (engine.audit)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    # When the sweeper next writes the heads to the anchor file (TSUNAGU_AUDIT_ANCHOR_FILE), on
    # chain 1's row; the conditional UPDATE that moves it on is the claim, so one sweeper anchors per day.
    anchor_due_at: Mapped[datetime | None]


class AuditRecord(Base):
    """Append-only, hash-chained record of every read of case data and every change."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_case_at", "case_id", "at"), Index("ix_audit_records_actor_at", "actor_name", "at"),
                      Index("ix_audit_records_at", "at"),
                      UniqueConstraint("chain", "chain_seq"))

    # The trail's one total order (search, export): allocated by the database, not gapless.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Which chain the record is on, and its gapless place in it (taken under that chain's head
    # lock): a deleted record leaves a visible hole in its chain.
    chain: Mapped[int] = mapped_column(Integer)
    chain_seq: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[str | None] = mapped_column(String(36))
    case_number: Mapped[str | None] = mapped_column(String(32))
    origin: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LoginAttempt(Base):
    """Sign-in attempts, for rate limiting by user name and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name_at", "name", "at"), Index("ix_login_attempts_origin_at", "origin", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    origin: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime]
    success: Mapped[bool]


class WebSession(Base):
    """A staff page session. The browser's cookie holds a random key; only its SHA-256 is kept
    here, so a copy of this table opens no session. A row without a user is a visitor's
    session before sign-in (language, the sign-in form's CSRF token, messages)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id_ended_at", "user_id", "ended_at"),
                      Index("ix_web_sessions_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Absolute end (a working day after sign-in), whatever the activity.
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str | None] = mapped_column(String(100))
    csrf_token: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class MessageWait(Base):
    """A message (or signal) catch a case's workflow waits at, so an incoming message finds
    its case by an index lookup instead of loading every workflow. Kept in line by `_sync`;
    a row exists only while the catch waits."""

    __tablename__ = "message_waits"
    __table_args__ = (Index("ix_message_waits_route", "kind", "name", "correlation_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    # The SpiffWorkflow task id of the waiting catch event or receive task.
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    # {property: value} the catch expects; None when the diagram's values are not known yet.
    correlation: Mapped[dict[str, Any] | None]
    # SHA-256 of the canonical JSON of `correlation`: what the route index looks up.
    correlation_key: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime]


class Source(Base):
    """A registered sender of signed incoming messages (POST /webhooks/<name>)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Standard Webhooks secret (whsec_<base64>). Kept as is: verifying an HMAC needs the key itself.
    secret: Mapped[str] = mapped_column(String(200))
    # When set, messages from this source may only start or move cases of this process.
    process_key: Mapped[str | None] = mapped_column(String(100))
    # The referring group of cases its messages start.
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class InboundMessage(Base):
    """Webhook ids already accepted from a source (replay protection), kept at least 24 h."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("source_id", "webhook_id", name="uq_inbound_messages_source_webhook"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(index=True)
