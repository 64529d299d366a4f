"""The persistent outbox: a decided message is a row before anything is sent.

State machine of an ``outbox`` row (``messages.status`` mirrors it: queued until sent)::

    queued --claim--> claimed --mark_sending--> sending --HTTP ok--> sent
       ^                 |  (lease, renewed)       |--permanent 4xx--> failed
       |                 |                         |--429/5xx/network--> claimed (waits)
       +---- lease ran out / stop() / breaker open-+

* ``claimed`` rows are held by one gate (``claimed_by`` + ``lease_until``); a gate renews
  its leases while it holds them. Transitions out of ``claimed`` are conditional on
  ``claimed_by``, so two processes can never both move a row to ``sending``.
* ``sending`` is committed *before* the HTTP call. Telegram's Bot API has no idempotency
  key, so a process killed after Telegram accepted a message but before ``sent`` was
  committed leaves a row in ``sending`` whose fate is unknown: the only ambiguous window.
  It is as short as one HTTP round trip plus one batched commit, and only rows in
  ``sending`` can be in it: a SIGKILL at any other moment loses nothing and duplicates
  nothing (``claimed`` rows were never sent; ``queued`` rows were never claimed).
* Restart policy for rows found in ``sending`` with an expired lease (or a dead local
  owner): setting ``outbox_ambiguous_policy`` = ``resend`` (default: nothing decided is
  lost; a message may appear twice, at most once extra per ambiguous row, counted in
  ``resends_after_ambiguity``) or ``fail`` (never a duplicate; the row becomes ``failed``
  with ``last_error`` "ambiguous", visible to operators). A network error *after* the
  request was written (timeout, reset) is the same ambiguity at run time and follows the
  same policy; a refused connection is not ambiguous and is retried.
* The idempotency key is fixed when the decision is made; enqueueing the same decision
  twice (a retried commit) inserts nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.base import utcnow
from piyasa.db.cluster_models import Lease
from piyasa.db.models import Message
from piyasa.db.runtime_models import OutboxItem, ReplyRequest

LEASE_S = 30.0
AMBIGUOUS = "ambiguous: the process stopped while Telegram may have accepted the message"


def make_instance_id() -> str:
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{os.urandom(3).hex()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bot_lease_is(holder: str) -> ColumnElement[bool]:
    """The fencing check: the row's bot lease (``leases`` row ``bot:<id>``) is held by
    ``holder`` and unexpired on the database's clock — a stale owner's send is refused."""
    name = literal("bot:").concat(cast(OutboxItem.bot_id, String))
    return exists().where(
        Lease.name == name, Lease.holder == holder, Lease.expires_at > func.clock_timestamp()
    )


@dataclass
class Draft:
    """A generated message ready to be queued (a decision with its text and facts)."""

    idempotency_key: str
    bot_id: int
    chat_id: int
    tg_chat_id: int
    is_group: bool
    text: str
    topic: str | None = None
    model: str | None = None
    latency_ms: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = None
    cost_usd: Decimal | None = None
    reply_to_tg_message_id: int | None = None
    reply_request_id: int | None = None
    decided_at: datetime | None = None


@dataclass
class Item:
    """An outbox row as a gate holds it in memory."""

    id: int
    message_id: int
    bot_id: int
    chat_id: int
    tg_chat_id: int
    is_group: bool
    text: str
    reply_to_tg_message_id: int | None
    decided_at: datetime
    attempts: int = 0
    not_before: float = 0.0  # monotonic time before which this item must not be tried
    busy: bool = False  # being sent, or its outcome not yet committed
    refused: bool = False  # Telegram refused it for good (not: failed unsent, e.g. disabled)


class OutboxStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dialect: str,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.dialect = dialect
        self.wall = wall  # injectable so tests can move time instead of waiting
        # SQLite has one writer: serialising our writes beats its busy-wait back-off.
        self._lock = asyncio.Lock() if dialect == "sqlite" else None
        # Several instances (piyasa.cluster.spread): the bots this instance owns now. None:
        # one instance, every bot is ours. ``fence``: our lease holder id when bot leases
        # are rows of ``leases`` (PostgreSQL); claimed -> sending then also checks, on the
        # database's clock, that the bot's lease is still ours.
        self.owned: Callable[[], set[int]] | None = None
        self.fence: str | None = None

    def _mine(self) -> list[int] | None:
        return None if self.owned is None else sorted(self.owned())

    def _write(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._lock if self._lock is not None else contextlib.nullcontext()

    async def enqueue(self, drafts: Sequence[Draft]) -> list[Item]:
        """Insert messages + outbox rows in one transaction (duplicate keys are skipped)."""
        if not drafts:
            return []
        keys = [d.idempotency_key for d in drafts]
        async with self._write(), self.sessions() as session, session.begin():
            known = set(
                (
                    await session.scalars(
                        select(OutboxItem.idempotency_key).where(
                            OutboxItem.idempotency_key.in_(keys)
                        )
                    )
                ).all()
            )
            fresh = [d for d in drafts if d.idempotency_key not in known]
            now = self.wall()
            msgs = [
                Message(
                    chat_id=d.chat_id,
                    bot_id=d.bot_id,
                    author_kind="bot",
                    text=d.text,
                    reply_to_message_id=d.reply_to_tg_message_id,
                    created_at=d.decided_at or now,
                    topic=d.topic,
                    model=d.model,
                    latency_ms=d.latency_ms,
                    tokens_in=d.tokens_in,
                    tokens_out=d.tokens_out,
                    tokens_cached=d.tokens_cached,
                    cost_usd=d.cost_usd,
                    status="queued",
                )
                for d in fresh
            ]
            session.add_all(msgs)
            await session.flush()
            rows = [
                OutboxItem(
                    message_id=m.id,
                    idempotency_key=d.idempotency_key,
                    bot_id=d.bot_id,
                    chat_id=d.chat_id,
                    tg_chat_id=d.tg_chat_id,
                    is_group=d.is_group,
                    reply_to_tg_message_id=d.reply_to_tg_message_id,
                    state="queued",
                    attempts=0,
                    resends_after_ambiguity=0,
                    next_attempt_at=now,
                    decided_at=d.decided_at or now,
                )
                for d, m in zip(fresh, msgs, strict=True)
            ]
            session.add_all(rows)
            await session.flush()
            for d, m in zip(fresh, msgs, strict=True):
                if d.reply_request_id is not None:
                    await session.execute(
                        update(ReplyRequest)
                        .where(ReplyRequest.id == d.reply_request_id)
                        .values(answered_at=now, answer_message_id=m.id)
                    )
        return [
            Item(
                id=r.id,
                message_id=r.message_id,
                bot_id=r.bot_id,
                chat_id=r.chat_id,
                tg_chat_id=r.tg_chat_id,
                is_group=r.is_group,
                text=d.text,
                reply_to_tg_message_id=r.reply_to_tg_message_id,
                decided_at=r.decided_at,
            )
            for r, d in zip(rows, fresh, strict=True)
        ]

    async def record_failed_generation(
        self, bot_id: int, chat_id: int, topic: str | None, model: str | None, kind: str, text: str
    ) -> None:
        """A generation that failed is still a fact analytics counts (no outbox row)."""
        async with self._write(), self.sessions() as session, session.begin():
            session.add(
                Message(
                    chat_id=chat_id,
                    bot_id=bot_id,
                    author_kind="bot",
                    text="",
                    topic=topic,
                    model=model,
                    status="failed",
                    error_class=kind[:32],
                    error_text=text[:1000],
                )
            )

    async def claim(
        self, instance: str, limit: int, lease_s: float = LEASE_S, exclude: Sequence[int] = ()
    ) -> list[Item]:
        """Atomically take up to ``limit`` due rows (oldest first) for this gate."""
        if limit <= 0:
            return []
        now = self.wall()
        due = or_(
            and_(OutboxItem.state == "queued", OutboxItem.next_attempt_at <= now),
            and_(OutboxItem.state == "claimed", OutboxItem.lease_until < now),
        )
        pick = select(OutboxItem.id).where(due).order_by(OutboxItem.id).limit(limit)
        mine = self._mine()
        if mine is not None:
            if not mine:
                return []
            pick = pick.where(OutboxItem.bot_id.in_(mine))
        if exclude:
            pick = pick.where(OutboxItem.id.not_in(list(exclude)))
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(OutboxItem)
            .where(OutboxItem.id.in_(pick.scalar_subquery()))
            .values(
                state="claimed",
                claimed_by=instance,
                lease_until=now + timedelta(seconds=lease_s),
            )
            .returning(
                OutboxItem.id,
                OutboxItem.message_id,
                OutboxItem.bot_id,
                OutboxItem.chat_id,
                OutboxItem.tg_chat_id,
                OutboxItem.is_group,
                OutboxItem.reply_to_tg_message_id,
                OutboxItem.decided_at,
                OutboxItem.attempts,
                OutboxItem.next_attempt_at,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._write(), self.sessions() as session, session.begin():
            rows = (await session.execute(stmt)).all()
            if not rows:
                return []
            texts = dict(
                (
                    await session.execute(
                        select(Message.id, Message.text).where(
                            Message.id.in_([r.message_id for r in rows])
                        )
                    )
                ).all()
            )
        items = [
            Item(
                id=r.id,
                message_id=r.message_id,
                bot_id=r.bot_id,
                chat_id=r.chat_id,
                tg_chat_id=r.tg_chat_id,
                is_group=r.is_group,
                text=texts.get(r.message_id, ""),
                reply_to_tg_message_id=r.reply_to_tg_message_id,
                decided_at=r.decided_at,
                attempts=r.attempts,
            )
            for r in rows
        ]
        items.sort(key=lambda i: i.id)
        return items

    async def renew(self, instance: str, lease_s: float = LEASE_S) -> int:
        """Extend the leases of every row this gate holds."""
        now = self.wall()
        async with self._write(), self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.claimed_by == instance,
                    OutboxItem.state.in_(("claimed", "sending")),
                )
                .values(lease_until=now + timedelta(seconds=lease_s))
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount or 0)

    async def mark_sending(self, instance: str, ids: Sequence[int]) -> set[int]:
        """claimed -> sending, only for rows this gate still owns. Commit precedes the send."""
        if not ids:
            return set()
        now = self.wall()
        where = [
            OutboxItem.id.in_(list(ids)),
            OutboxItem.claimed_by == instance,
            OutboxItem.state == "claimed",
        ]
        mine = self._mine()
        if mine is not None:  # a bot handed to another instance is no longer sent from here
            if not mine:
                return set()
            where.append(OutboxItem.bot_id.in_(mine))
        if self.fence is not None:
            where.append(_bot_lease_is(self.fence))
        async with self._write(), self.sessions() as session, session.begin():
            rows = await session.execute(
                update(OutboxItem)
                .where(*where)
                .values(state="sending", sending_at=now, attempts=OutboxItem.attempts + 1)
                .returning(OutboxItem.id)
                .execution_options(synchronize_session=False)
            )
            return set(rows.scalars().all())

    async def complete(
        self,
        sent: Sequence[tuple[Item, int, datetime]] = (),
        retry: Sequence[tuple[Item, datetime, str]] = (),
        failed: Sequence[tuple[Item, str]] = (),
        release: Sequence[tuple[Item, datetime, str | None]] = (),
    ) -> None:
        """Record outcomes in one transaction.

        sent: (item, telegram message id, when), recorded with ``item.tg_chat_id``, the
        chat it was delivered to; retry: the row stays held (``claimed``)
        and waits until ``next_attempt_at``; failed: permanent; release: back to ``queued``
        for anyone (breaker open, stopping).
        """
        if not (sent or retry or failed or release):
            return
        async with self._write(), self.sessions() as session, session.begin():
            if sent:
                await session.execute(
                    update(OutboxItem),
                    [
                        {
                            "id": it.id,
                            "state": "sent",
                            "sent_at": at,
                            "telegram_message_id": tg_id,
                            # the chat it was delivered to: a supergroup move learned
                            # in memory may reach the row's stored id only later
                            "tg_chat_id": it.tg_chat_id,
                            "last_error": None,
                        }
                        for it, tg_id, at in sent
                    ],
                )
                await session.execute(
                    update(Message),
                    [
                        {
                            "id": it.message_id,
                            "status": "sent",
                            "sent_at": at,
                            "telegram_message_id": tg_id,
                        }
                        for it, tg_id, at in sent
                    ],
                )
            if retry:
                await session.execute(
                    update(OutboxItem),
                    [
                        {
                            "id": it.id,
                            "state": "claimed",
                            "next_attempt_at": when,
                            "last_error": err[:1000],
                        }
                        for it, when, err in retry
                    ],
                )
            if release:
                await session.execute(
                    update(OutboxItem),
                    [
                        {
                            "id": it.id,
                            "state": "queued",
                            "claimed_by": None,
                            "lease_until": None,
                            "next_attempt_at": when,
                            "last_error": err[:1000] if err else None,
                        }
                        for it, when, err in release
                    ],
                )
            if failed:
                await session.execute(
                    update(OutboxItem),
                    [
                        {"id": it.id, "state": "failed", "last_error": err[:1000]}
                        for it, err in failed
                    ],
                )
                await session.execute(
                    update(Message),
                    [
                        {
                            "id": it.message_id,
                            "status": "failed",
                            "error_class": "telegram",
                            "error_text": err[:1000],
                        }
                        for it, err in failed
                    ],
                )

    async def release_bots(self, instance: str, bot_ids: Sequence[int]) -> int:
        """Give back the rows of ``bot_ids`` this gate holds but has not started sending
        (the bots were handed to another instance, which claims them next)."""
        if not bot_ids:
            return 0
        async with self._write(), self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.claimed_by == instance,
                    OutboxItem.state == "claimed",
                    OutboxItem.bot_id.in_(list(bot_ids)),
                )
                .values(state="queued", claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount or 0)

    async def release_all(self, instance: str) -> int:
        """Give back every row this gate holds but has not started sending (clean stop)."""
        async with self._write(), self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxItem)
                .where(OutboxItem.claimed_by == instance, OutboxItem.state == "claimed")
                .values(state="queued", claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount or 0)

    async def recover(
        self, policy: str = "resend", local_host: str | None = None
    ) -> dict[str, int]:
        """Apply the restart policy to rows whose owner is gone.

        An owner is gone when its lease ran out, or (same host) its process no longer
        exists, so a restart on one machine need not wait for the lease.
        """
        host = local_host or socket.gethostname()[:48]
        now = self.wall()
        async with self._write(), self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        OutboxItem.id,
                        OutboxItem.state,
                        OutboxItem.claimed_by,
                        OutboxItem.lease_until,
                    ).where(OutboxItem.state.in_(("claimed", "sending")))
                )
            ).all()
            gone_claimed, gone_sending = [], []
            for r in rows:
                owner = r.claimed_by or ""
                expired = r.lease_until is None or r.lease_until < now
                dead = False
                parts = owner.split(":")
                if len(parts) >= 3 and parts[0] == host and parts[1].isdigit():
                    dead = int(parts[1]) != os.getpid() and not _pid_alive(int(parts[1]))
                if expired or dead:
                    (gone_sending if r.state == "sending" else gone_claimed).append(r.id)
            if gone_claimed:
                await session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id.in_(gone_claimed))
                    .values(state="queued", claimed_by=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )
            if gone_sending:
                if policy == "fail":
                    await session.execute(
                        update(OutboxItem)
                        .where(OutboxItem.id.in_(gone_sending))
                        .values(state="failed", last_error=AMBIGUOUS)
                        .execution_options(synchronize_session=False)
                    )
                    msg_ids = (
                        await session.scalars(
                            select(OutboxItem.message_id).where(OutboxItem.id.in_(gone_sending))
                        )
                    ).all()
                    await session.execute(
                        update(Message)
                        .where(Message.id.in_(msg_ids))
                        .values(status="failed", error_class="ambiguous", error_text=AMBIGUOUS)
                        .execution_options(synchronize_session=False)
                    )
                else:
                    await session.execute(
                        update(OutboxItem)
                        .where(OutboxItem.id.in_(gone_sending))
                        .values(
                            state="queued",
                            claimed_by=None,
                            lease_until=None,
                            next_attempt_at=now,
                            resends_after_ambiguity=OutboxItem.resends_after_ambiguity + 1,
                            last_error=AMBIGUOUS,
                        )
                        .execution_options(synchronize_session=False)
                    )
        return {"claimed": len(gone_claimed), "sending": len(gone_sending)}

    async def depth(self) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(
                        OutboxItem.state.in_(("queued", "claimed", "sending"))
                    )
                )
                or 0
            )

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxItem.state, func.count()).group_by(OutboxItem.state)
                )
            ).all()
        return {state: int(n) for state, n in rows}
