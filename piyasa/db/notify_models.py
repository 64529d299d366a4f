"""Notification tables (issue 13): incidents, per-user read state, the delivery outbox,
silences and maintenance windows, routes, per-user preferences and configured channels.

One row of ``notifications`` is one incident: every event with its fingerprint while it is
active (open, acknowledged or silenced) lands on that row (count, last seen). While active,
``active_fingerprint`` holds the fingerprint, and it is unique: two instances that see the
same event at once cannot open two incidents. A resolved incident sets it to NULL, so the
next firing opens a new row (NULLs never collide on SQLite or PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, BigId, JSONType, UTCDateTime, utcnow

SEVERITIES = ("critical", "warning", "info", "success")
STATES = ("open", "acknowledged", "resolved", "silenced")
DELIVERY_STATES = ("pending", "sent", "failed")


class Notification(Base):
    """An incident: what happened (catalogue key + params), how often, and who acted.

    Timer columns make grouping survive a restart: ``due_at``/``due_kind`` say which notice
    (``firing``/``resolved``/``repeat``) is owed and when; ``notified_at``/``notified_kind``
    what was last handed to the outbox (``notify_seq`` counts those hand-overs)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("severity IN ('critical', 'warning', 'info', 'success')", name="severity"),
        CheckConstraint("state IN ('open', 'acknowledged', 'resolved', 'silenced')", name="state"),
        Index("ix_notifications_last_seen", "last_seen"),
        Index("ix_notifications_due_at", "due_at"),
        Index("ix_notifications_group_key", "group_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200), index=True)
    active_fingerprint: Mapped[str | None] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    title_key: Mapped[str] = mapped_column(String(100))
    body_key: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    group_key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="open")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    fail_streak: Mapped[int] = mapped_column(Integer, default=0)
    ok_streak: Mapped[int] = mapped_column(Integer, default=0)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    acted_by: Mapped[str | None] = mapped_column(String(128))
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_kind: Mapped[str | None] = mapped_column(String(16))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_kind: Mapped[str | None] = mapped_column(String(16))
    notify_seq: Mapped[int] = mapped_column(Integer, default=0)


class NotificationRead(Base):
    """User ``user_id`` read the notification as it was at ``read_at`` (a later event on
    the same incident makes it unread again)."""

    __tablename__ = "notification_reads"

    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotifyDelivery(Base):
    """One message owed to one destination: pending -> sent, or failed (with the reason)
    and retried at ``next_attempt_at``; a permanent failure leaves ``next_attempt_at`` NULL.

    ``dedupe_key`` is unique: handing the same notices to the same destination twice (two
    instances flushing at once, a flush retried after a crash) inserts nothing new."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
        Index("ix_notify_deliveries_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    destination: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    notification_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    # what a row of kind "analytics" renders from at send time (migration 0020)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    lang: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotifySilence(Base):
    """Mutes every event whose labels match all ``matchers`` between start and end.

    ``kind`` "maintenance" is a planned window (announced ahead, may match everything)."""

    __tablename__ = "notify_silences"
    __table_args__ = (CheckConstraint("kind IN ('silence', 'maintenance')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="silence")
    matchers: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotifyRoute(Base):
    """Events matching ``matchers`` go to ``destinations`` (``telegram:<chat>``,
    ``slack:<channel>``, ``channel:<name>``)."""

    __tablename__ = "notify_routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    matchers: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    destinations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotifyPreference(Base):
    """One user's notification preferences (their DMs: which severities, on which chat
    surfaces, quiet hours in their timezone, language) and their digest."""

    __tablename__ = "notify_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    severities: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    quiet_hours: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str | None] = mapped_column(String(8))
    # "daily 09:00" / "weekly mon 09:00" in ``timezone``; None: no digest (migration 0012)
    digest: Mapped[str | None] = mapped_column(String(32))
    # the analytics digest, same form as ``digest`` (migration 0020)
    analytics_digest: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotifyChannel(Base):
    """A configured non-chat channel (email, webhook, Apprise). ``config_encrypted`` is the
    JSON config sealed with ``services.box``: it holds SMTP passwords and webhook secrets."""

    __tablename__ = "notify_channels"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    config_encrypted: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
