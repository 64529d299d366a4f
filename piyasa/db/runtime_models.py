"""Tables of the bot fleet runtime: the outbox, reply requests, membership, worker events.

The outbox is separate from ``messages`` on purpose: ``messages`` is the conversation record
analytics read (one row per message, its generation facts, status queued/sent/failed);
``outbox`` is the delivery bookkeeping (claims, leases, attempts, the ``sending`` state that
marks the one ambiguous window). See ``piyasa.runtime.outbox`` for the state machine.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, BigId, UTCDateTime, utcnow

OUTBOX_STATES = ("queued", "claimed", "sending", "sent", "failed")


class OutboxItem(Base):
    """A decided bot message on its way to Telegram.

    queued -> claimed (a gate holds it, lease) -> sending (committed before the HTTP call)
    -> sent | failed; claimed/sending rows whose lease ran out are recovered on restart.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'claimed', 'sending', 'sent', 'failed')", name="state"
        ),
        Index("ix_outbox_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    tg_chat_id: Mapped[int] = mapped_column(BigInteger)
    is_group: Mapped[bool] = mapped_column(Boolean, default=True)
    reply_to_tg_message_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    resends_after_ambiguity: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class ReplyRequest(Base):
    """A human message that mentions or replies to a fleet bot and is owed an answer."""

    __tablename__ = "reply_requests"
    __table_args__ = (Index("ix_reply_requests_pending", "answered_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    target_bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer_message_id: Mapped[int | None] = mapped_column(BigInteger)


class BotChat(Base):
    """Which fleet bots talk in which chat, and pairs the fleet disabled.

    Membership: a chat with no *listed* rows has every enabled bot; otherwise its members
    are its listed rows with ``enabled``. ``disabled_reason`` set: the fleet stopped this
    pair (Telegram said the bot was kicked, or the chat is gone) until an operator
    re-enables it. A disable in a chat whose members are not listed is recorded in a row
    with ``listed`` False, so it does not turn the chat's membership into a list.
    """

    __tablename__ = "bot_chats"
    __table_args__ = (UniqueConstraint("bot_id", "chat_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    listed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FleetPoller(Base):
    """Which instance long-polls a fleet bot, and when it last said so.

    Telegram lets one getUpdates run per token and ends the other with 409 "Conflict:
    terminated by other getUpdates request"; this row lets the loser name the winner, with
    or without a shared cache.
    """

    __tablename__ = "fleet_pollers"

    bot_id: Mapped[int] = mapped_column(
        ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    instance: Mapped[str] = mapped_column(String(96))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerEvent(Base):
    """Why a runtime worker stopped, crashed, was restarted, or hit a conflict."""

    __tablename__ = "worker_events"
    __table_args__ = (Index("ix_worker_events_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    instance: Mapped[str] = mapped_column(String(96))
    worker: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
