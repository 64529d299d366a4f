"""The delivery outbox: each notice owed to a destination is a row, sent at most once per
claim, retried with growing back-off until it goes, and visible while it has not.

Senders: chat surfaces register one per surface (``telegram``, ``slack``) — a coroutine
``send(chat, items, lang, kind)`` that renders and posts — and configured channels
(``channel:<name>``) are built from their sealed configuration through the channel
factory (``piyasa.admin.notify.channels.base.build_channel``) and get an
:class:`OutgoingMessage`. A destination whose deliveries keep failing raises its own
warning, routed everywhere except to itself.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin.notify.channels.base import Channel, OutgoingMessage
from piyasa.admin.notify.events import SEVERITY_RANK
from piyasa.admin.notify.routing import Target, chat_of
from piyasa.admin.notify.rules import NotifyError
from piyasa.admin.notify.store import Item, item
from piyasa.db.notify_models import Notification, NotifyChannel, NotifyDelivery
from piyasa.logs import REDACTOR
from piyasa.services import Services

log = logging.getLogger(__name__)

ChatSender = Callable[[str, list[Item], str, str], Awaitable[None]]
# kind -> send(surface, chat, payload, lang): a row rendered from its payload at send time
RichSender = Callable[[str, str, dict[str, Any], str], Awaitable[None]]
ChannelFactory = Callable[[str, str, dict[str, str]], Channel]
Translate = Callable[..., str]
LEASE_S = 60.0  # a claimed row is not picked again for this long (another instance, a hang)
FAILING_AFTER = 3  # failures in a row before a destination raises its own warning
KINDS = ("notice", "test", "analytics")  # analytics: rendered from its payload (rich sender)


class Undeliverable(Exception):
    """This delivery can never succeed as it is (no such channel, no chat account)."""


def dedupe_key(destination: str, kind: str, ids_seqs: list[tuple[int, int]]) -> str:
    raw = f"{destination}|{kind}|" + ",".join(f"{i}.{s}" for i, s in sorted(ids_seqs))
    return hashlib.sha256(raw.encode()).hexdigest()


def enqueue(
    session: AsyncSession,
    target: Target,
    kind: str,
    ids_seqs: list[tuple[int, int]],
    now: datetime,
) -> NotifyDelivery:
    """Add one owed delivery to the session (the caller's transaction)."""
    row = NotifyDelivery(
        dedupe_key=dedupe_key(target.destination, kind, ids_seqs),
        destination=target.destination,
        kind=kind,
        notification_ids=[i for i, _ in ids_seqs],
        lang=target.lang,
        state="pending",
        attempts=0,
        next_attempt_at=target.hold_until or now,
        created_at=now,
    )
    session.add(row)
    return row


def seal_config(services: Services, config: dict[str, str]) -> str:
    return services.box.encrypt(json.dumps(config, sort_keys=True))


def open_config(services: Services, sealed: str) -> dict[str, str]:
    return dict(json.loads(services.box.decrypt(sealed)))


PLAIN = {
    "alerts.test.title": "Piyasa test notification",
    "alerts.test.body": "If you can read this, notifications reach this destination.",
}


def plain_english(_lang: str, key: str, /, **params: Any) -> str:
    """A translator for processes without the chat catalogues (the CLI's test)."""
    return PLAIN.get(key, key).format(**params) if key in PLAIN else key


def outgoing(
    items: list[Item],
    lang: str,
    kind: str,
    translate: Translate,
    has_key: Callable[[str], bool] | None = None,
) -> OutgoingMessage:
    """The plain message a configured channel gets for ``items`` in ``lang``; a
    recovery is titled "✅ Resolved: ..." (with ``<title_key>.resolved`` where
    ``has_key`` says the catalogue has one) and sent as severity ``success``."""
    if kind == "test" or not items:
        title = translate(lang, "alerts.test.title")
        return OutgoingMessage(
            title=title,
            body_text=translate(lang, "alerts.test.body"),
            body_html=None,
            severity="info",
            fingerprint="notify:test",
            source="notify",
        )
    worst = min(items, key=lambda i: SEVERITY_RANK.get(i.severity, 9))
    lines = []
    for it in items:
        title = translate(lang, it.title_key, **it.params)
        state = translate(lang, f"alerts.state.{it.state}")
        lines.append(f"[{it.severity}] {title} — {state} (#{it.id}, x{it.count})")
        if it.body_key:
            lines.append("  " + translate(lang, it.body_key, **it.params))
    head = translate(lang, worst.title_key, **worst.params)
    if len(items) > 1:
        head = translate(lang, "alerts.group.title", n=len(items), first=head)
    over = all(it.state == "resolved" for it in items)
    if over:  # a recovery: "[SUCCESS] ✅ Resolved: Redis", not another "[CRITICAL] ..."
        if len(items) == 1 and has_key is not None and has_key(worst.title_key + ".resolved"):
            head = translate(lang, worst.title_key + ".resolved", **worst.params)
        head = translate(lang, "alerts.notice.resolved", title=head)
    return OutgoingMessage(
        title=head,
        body_text="\n".join(lines),
        body_html=_html(lines),
        severity="success" if over else worst.severity,
        fingerprint=worst.fingerprint,
        source=worst.source,
        fields={"state": worst.state, "count": str(worst.count)},
    )


def _html(lines: list[str]) -> str:
    """The text lines as HTML (each incident a paragraph, its body indented in it)."""
    parts: list[str] = []
    for line in lines:
        if line.startswith("  ") and parts:
            parts[-1] = parts[-1].removesuffix("</p>") + f"<br>{html.escape(line.strip())}</p>"
        else:
            parts.append(f"<p>{html.escape(line)}</p>")
    return "".join(parts)


def backoff_s(attempts: int, base: float, cap: float) -> float:
    return min(cap, base * 2 ** min(max(attempts - 1, 0), 16))


def error_text(exc: BaseException) -> str:
    """What the row and the views say about a failure: the class and message, with every
    configured secret redacted (a URL with a token must never reach a screen)."""
    return REDACTOR(f"{type(exc).__name__}: {exc}")[:300]


async def due_rows(session: AsyncSession, now: datetime, limit: int) -> list[NotifyDelivery]:
    return list(
        await session.scalars(
            select(NotifyDelivery)
            .where(
                NotifyDelivery.state != "sent",
                NotifyDelivery.next_attempt_at.is_not(None),
                NotifyDelivery.next_attempt_at <= now,
            )
            .order_by(NotifyDelivery.id)
            .limit(limit)
        )
    )


async def claim(session: AsyncSession, row_id: int, now: datetime) -> bool:
    return bool(await claim_many(session, [row_id], now))


async def claim_many(session: AsyncSession, row_ids: list[int], now: datetime) -> set[int]:
    """Lease the rows of ``row_ids`` still due at ``now`` for ``LEASE_S`` in one statement;
    the ids this caller got (another instance may have taken some)."""
    if not row_ids:
        return set()
    result = await session.execute(
        update(NotifyDelivery)
        .where(
            NotifyDelivery.id.in_(row_ids),
            NotifyDelivery.state != "sent",
            or_(NotifyDelivery.next_attempt_at <= now),
        )
        .values(next_attempt_at=now + timedelta(seconds=LEASE_S))
        .returning(NotifyDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


async def items_of(session: AsyncSession, ids: list[int]) -> list[Item]:
    by_id = await items_by_id(session, ids)
    return [by_id[i] for i in ids if i in by_id]


async def items_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Item]:
    """The incidents ``ids`` as Items, read in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(Notification).where(Notification.id.in_(wanted)))
    return {r.id: item(r) for r in rows}


async def resolve_destination(session: AsyncSession, destination: str) -> tuple[str, str]:
    """``(surface, chat)`` for a chat destination, ``("channel", name)`` for a channel;
    Undeliverable when a user has no account on that surface."""
    kind, _, rest = destination.partition(":")
    if kind == "user":
        uid, _, surface = rest.partition(":")
        chat = await chat_of(session, int(uid), surface)
        if chat is None:
            raise Undeliverable(f"user {uid} has no {surface} account linked")
        return surface, chat
    if kind in ("telegram", "slack", "channel"):
        return kind, rest
    raise Undeliverable(f"unknown destination {destination!r}")


async def channel_row(session: AsyncSession, name: str) -> NotifyChannel:
    row = await session.get(NotifyChannel, name)
    if row is None:
        raise Undeliverable(f"no channel named {name!r}")
    if not row.enabled:
        raise Undeliverable(f"channel {name!r} is disabled")
    return row


def unknown_channel(name: str) -> NotifyError:
    return NotifyError(
        "unknown_channel", f"no channel named {name!r}; see `piyasa alerts channels`", value=name
    )


def retry_after(exc: BaseException) -> float | None:
    """A wait the far side asked for (Telegram ``retry_after``, DeliveryError)."""
    for attr in ("retry_after_s", "retry_after"):
        value: Any = getattr(exc, attr, None)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def permanent(exc: BaseException) -> bool:
    return isinstance(exc, Undeliverable) or bool(getattr(exc, "permanent", False))
