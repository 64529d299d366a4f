"""Core tables. Each later capability adds its own models and Alembic revision."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from piyasa.db.base import Base, BigId, JSONType, UTCDateTime, utcnow
from piyasa.runtime.schedule import validate_active_hours, validate_timezone

ROLES = ("viewer", "operator", "admin")
MESSAGE_STATUSES = ("received", "queued", "sent", "failed")


class Bot(Base):
    """A fleet bot account; the token is stored encrypted, its hash keeps it unique.

    ``disabled_reason`` is set (with ``enabled`` False) when the fleet itself stopped the
    bot: Telegram called its token Unauthorized, or its schedule is invalid. An operator
    re-enables it (``FleetControl.enable``). ``active_hours`` and ``timezone`` pass
    ``piyasa.runtime.schedule`` on every write through the ORM.
    """

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    token_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    persona: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    speed_profile: Mapped[str] = mapped_column(String(16), default="normal")
    active_hours: Mapped[str] = mapped_column(String(32), default="00:00-24:00")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Istanbul")
    hourly_limit: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @validates("active_hours")
    def _valid_active_hours(self, _key: str, value: str) -> str:
        return validate_active_hours(value)

    @validates("timezone")
    def _valid_timezone(self, _key: str, value: str) -> str:
        return validate_timezone(value)


class Chat(Base):
    """A Telegram group the fleet talks in."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16), default="supergroup")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    topics: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Fleet messages per hour in this chat (chatter and replies); None: only the fleet's
    # budget and Telegram's 20/min per group bound it (piyasa.fleetadmin.chats).
    msg_budget: Mapped[int | None] = mapped_column(Integer)


class ChatMigration(Base):
    """A Telegram group that became a supergroup: every later call names ``new_chat_id``.

    Telegram gives the supergroup a new ``-100…`` id and answers calls to the old one with
    400 and ``parameters.migrate_to_chat_id`` (Bot API, ResponseParameters). The admin chats
    of ``PIYASA_ADMIN_CHAT_IDS`` are read through these rows (``piyasa.admin.admin_chats``);
    fleet chats move in place (``piyasa.runtime.migration``) and are recorded here too.
    """

    __tablename__ = "chat_migrations"

    old_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    new_chat_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32))  # "admin" or "fleet"
    migrated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminChat(Base):
    """An admin chat adopted from chat (the /setup wizard's "Admin chat" step): read with
    ``PIYASA_ADMIN_CHAT_IDS`` at every start (``piyasa.admin.admin_chats``), so a group
    chosen in chat needs no edit of the environment. ``added_by`` is the audit actor label.
    """

    __tablename__ = "admin_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255), default="")
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """One message in a fleet chat: a human's (received) or a bot's (queued/sent/failed).

    Bot messages carry their generation facts so analytics never re-derive them.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("chat_id", "telegram_message_id"),
        CheckConstraint("author_kind IN ('bot', 'human')", name="author_kind"),
        CheckConstraint("status IN ('received', 'queued', 'sent', 'failed')", name="status"),
        Index("ix_messages_chat_created", "chat_id", "created_at"),
        Index("ix_messages_bot_created", "bot_id", "created_at"),
        Index("ix_messages_created", "created_at"),
        Index(
            "ix_messages_unrolled",
            "id",
            sqlite_where=text("rolled < 2 AND author_kind = 'bot'"),
            postgresql_where=text("rolled < 2 AND author_kind = 'bot'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id", ondelete="SET NULL"))
    author_kind: Mapped[str] = mapped_column(String(8))
    human_user_id: Mapped[int | None] = mapped_column(BigInteger)
    human_name: Mapped[str | None] = mapped_column(String(128))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    reply_to_message_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    topic: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    tokens_cached: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_text: Mapped[str | None] = mapped_column(Text)
    # Analytics progress (piyasa.analytics.rollup): 0 not rolled up, 1 decided counted,
    # 2 final outcome counted too. Human messages stay 0.
    rolled: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")

    chat: Mapped[Chat] = relationship(lazy="raise")
    bot: Mapped[Bot | None] = relationship(lazy="raise")


class Setting(Base):
    """A runtime-changeable setting, versioned so concurrent edits are detected."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A panel user; chat identities link to it, authorization reads its role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    ok_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Chat use (piyasa/admin/activity.py): the last request, and on how many UTC days.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    active_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class Identity(Base):
    """A Telegram or Slack account linked to a user, by numeric/opaque id only."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("provider", "external_id"),
        CheckConstraint("provider IN ('telegram', 'slack')", name="provider"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="identities")


class ApiKey(Base):
    """An API key: only its hash and a short prefix (to recognise it) are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when (UTC), where, with which (masked) parameters, and the result."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_actor", "actor"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    surface: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class OneTimeCode(Base):
    """A single-use code (link a chat account, redeem first-run setup).

    Kept in the database, not the cache, because the CLI process that prints a code exits
    before the code is redeemed by the running service. Only a keyed digest of the code and
    its first group (``selector``, to count wrong tries per code) are stored; see
    ``piyasa.admin.onetime``.
    """

    __tablename__ = "one_time_codes"
    __table_args__ = (Index("ix_one_time_codes_purpose_selector", "purpose", "selector"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    selector: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
