"""Reading and acting on incidents: the center's list with per-user read state, ack,
snooze, resolve, silences and maintenance windows, the outbox's undelivered rows.

Every change checks the incident's state in the same transaction and raises
:class:`~piyasa.admin.notify.rules.NotifyError` (nothing changed) when it cannot apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin.notify.rules import (
    NotifyError,
    format_matchers,
    parse_duration,
    parse_matchers,
)
from piyasa.db.notify_models import (
    Notification,
    NotificationRead,
    NotifyDelivery,
    NotifySilence,
)
from piyasa.services import Services

CENTER_DAYS = 30  # the center shows what is active, and what happened in this many days
STATE_FILTERS = {
    "open": ("open",),
    "acked": ("acknowledged",),
    "resolved": ("resolved",),
    "silenced": ("silenced",),
    "active": ("open", "acknowledged"),
    "all": ("open", "acknowledged", "resolved", "silenced"),
}
SNOOZES = {"1h": 3600, "4h": 4 * 3600, "1d": 86400}


@dataclass(frozen=True)
class Item:
    """An incident as the surfaces show it (no ORM object leaves this module)."""

    id: int
    fingerprint: str
    source: str
    severity: str
    title_key: str
    body_key: str | None
    params: dict[str, Any]
    labels: dict[str, str]
    state: str
    first_seen: datetime
    last_seen: datetime
    count: int
    acted_by: str | None
    acted_at: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    unread: bool = False
    undelivered: int = 0

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        return out


def item(row: Notification, *, unread: bool = False, undelivered: int = 0) -> Item:
    return Item(
        row.id,
        row.fingerprint,
        row.source,
        row.severity,
        row.title_key,
        row.body_key,
        dict(row.params or {}),
        dict(row.labels or {}),
        row.state,
        row.first_seen,
        row.last_seen,
        row.count,
        row.acted_by,
        row.acted_at,
        row.snoozed_until,
        row.resolved_at,
        unread,
        undelivered,
    )


@dataclass
class Center:
    """What ``/alerts`` and ``piyasa alerts list`` show."""

    items: list[Item]
    unread: int
    pending: int  # deliveries not yet sent
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _unread(user_id: int | None) -> Any:
    if user_id is None:
        return None
    return (
        ~select(NotificationRead.notification_id)
        .where(
            NotificationRead.notification_id == Notification.id,
            NotificationRead.user_id == user_id,
            NotificationRead.read_at >= Notification.last_seen,
        )
        .exists()
    )


def _window(now: datetime) -> Any:
    return or_(
        Notification.active_fingerprint.is_not(None),
        Notification.last_seen >= now - timedelta(days=CENTER_DAYS),
    )


async def center(
    services: Services,
    user_id: int | None,
    now: datetime,
    *,
    state: str = "all",
    limit: int = 10,
    offset: int = 0,
) -> Center:
    """The newest incidents (by last event) in ``state`` (see STATE_FILTERS), the
    user's unread count and the number of undelivered notices."""
    states = STATE_FILTERS.get(state)
    if states is None:
        raise NotifyError("bad_state", f"state {state!r}: use {', '.join(STATE_FILTERS)}")
    where = and_(_window(now), Notification.state.in_(states))
    unread_q = _unread(user_id)
    async with services.sessions() as session:
        cols: list[Any] = [Notification]
        if unread_q is not None:
            cols.append(unread_q.label("unread"))
        rows = (
            await session.execute(
                select(*cols)
                .where(where)
                .order_by(Notification.last_seen.desc(), Notification.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = await session.scalar(select(func.count(Notification.id)).where(where)) or 0
        unread = 0
        if unread_q is not None:
            unread = (
                await session.scalar(
                    select(func.count(Notification.id)).where(
                        _window(now), Notification.state != "silenced", unread_q
                    )
                )
                or 0
            )
        pending = await undelivered_count(session)
        counts = dict(
            (
                await session.execute(
                    select(Notification.state, func.count(Notification.id))
                    .where(_window(now))
                    .group_by(Notification.state)
                )
            ).all()
        )
    items = [item(r[0], unread=bool(r[1]) if unread_q is not None else False) for r in rows]
    return Center(items, unread, pending, total, counts)


async def undelivered_count(session: AsyncSession) -> int:
    return (
        await session.scalar(
            select(func.count(NotifyDelivery.id)).where(NotifyDelivery.state != "sent")
        )
        or 0
    )


async def undelivered(services: Services, limit: int = 50) -> list[NotifyDelivery]:
    """Deliveries not yet sent (pending, or failed and retried), oldest first."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(NotifyDelivery)
            .where(NotifyDelivery.state != "sent")
            .order_by(NotifyDelivery.id)
            .limit(limit)
        )
        return list(rows)


async def _load(session: AsyncSession, nid: int) -> Notification:
    row = await session.get(Notification, int(nid), with_for_update=True)
    if row is None:
        raise NotifyError("not_found", f"there is no notification #{nid}", id=nid)
    return row


async def get(services: Services, nid: int, user_id: int | None, now: datetime) -> Item:
    """Incident ``nid``; marks it read for ``user_id``."""
    async with services.sessions() as session, session.begin():
        row = await _load(session, nid)
        if user_id is not None:
            await _mark(session, row.id, user_id, now)
        owed = await session.scalars(
            select(NotifyDelivery.notification_ids).where(NotifyDelivery.state != "sent")
        )
        undelivered_n = sum(1 for ids in owed if row.id in (ids or []))
        return item(row, undelivered=int(undelivered_n or 0))


async def _mark(session: AsyncSession, nid: int, user_id: int, now: datetime) -> None:
    read = await session.get(NotificationRead, (nid, user_id))
    if read is None:
        session.add(NotificationRead(notification_id=nid, user_id=user_id, read_at=now))
    else:
        read.read_at = now


async def mark_all_read(services: Services, user_id: int, now: datetime) -> int:
    """Mark every unread incident of the center read for ``user_id``; how many."""
    async with services.sessions() as session, session.begin():
        ids = list(
            await session.scalars(select(Notification.id).where(_window(now), _unread(user_id)))
        )
        for nid in ids:
            await _mark(session, nid, user_id, now)
    return len(ids)


async def ack(services: Services, nid: int, actor: str, now: datetime) -> Item:
    """Acknowledge an open incident: no more repeats; its recovery is still told."""
    async with services.sessions() as session, session.begin():
        row = await _load(session, nid)
        if row.state != "open":
            raise NotifyError("not_open", f"#{nid} is {row.state}", id=nid, state=row.state)
        row.state, row.acted_by, row.acted_at = "acknowledged", actor, now
        if row.due_kind == "repeat":
            row.due_kind, row.due_at = None, None
        return item(row)


async def snooze(services: Services, nid: int, actor: str, span: str, now: datetime) -> Item:
    """No repeat of an open incident until ``span`` ("1h", "4h", "1d") has passed."""
    if span not in SNOOZES:
        raise NotifyError("bad_duration", f"snooze for {', '.join(SNOOZES)}", value=span)
    async with services.sessions() as session, session.begin():
        row = await _load(session, nid)
        if row.state not in ("open", "acknowledged"):
            raise NotifyError("not_open", f"#{nid} is {row.state}", id=nid, state=row.state)
        row.snoozed_until = now + timedelta(seconds=SNOOZES[span])
        row.acted_by, row.acted_at = actor, now
        if row.state == "open" and row.notified_kind is not None:
            row.due_kind, row.due_at = "repeat", row.snoozed_until
        return item(row)


async def resolve(services: Services, nid: int, actor: str, now: datetime) -> Item:
    """Close an incident by hand; a later event opens a new one. An incident that was
    told is told resolved once, at the next flush, everywhere it went (the others who
    heard of it learn it is over); one never told stays untold."""
    async with services.sessions() as session, session.begin():
        row = await _load(session, nid)
        if row.state == "resolved":
            raise NotifyError("not_open", f"#{nid} is resolved", id=nid, state=row.state)
        told = row.notified_kind in ("firing", "repeat")
        row.state, row.resolved_at, row.active_fingerprint = "resolved", now, None
        row.acted_by, row.acted_at = actor, now
        row.due_kind, row.due_at = ("resolved", now) if told else (None, None)
        return item(row)


# -- silences and maintenance windows -----------------------------------------------------------


@dataclass(frozen=True)
class SilenceInfo:
    id: int
    kind: str
    matchers: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "matchers": self.matchers,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
        }


def _silence_info(row: NotifySilence) -> SilenceInfo:
    return SilenceInfo(
        row.id,
        row.kind,
        format_matchers(row.matchers),
        row.starts_at,
        row.ends_at,
        row.created_by,
        row.comment,
    )


async def add_silence(
    services: Services,
    matchers: str,
    duration: str,
    actor: str,
    now: datetime,
    *,
    comment: str = "",
    kind: str = "silence",
    starts_at: datetime | None = None,
) -> SilenceInfo:
    """Mute events matching ``matchers`` for ``duration`` (from ``starts_at``, default
    now). NotifyError ``empty_matcher``/``bad_matcher``/``no_expiry``/``bad_duration``
    — nothing stored. A maintenance window may match everything (``*``)."""
    if kind == "maintenance" and matchers.strip() in ("", "*"):
        parsed: list[tuple[str, str, str]] = []
    else:
        parsed = parse_matchers(matchers)
    span = parse_duration(duration)
    start = starts_at or now
    async with services.sessions() as session, session.begin():
        row = NotifySilence(
            kind=kind,
            matchers=[list(m) for m in parsed],
            starts_at=start,
            ends_at=start + span,
            created_by=actor,
            comment=comment[:255],
            created_at=now,
        )
        session.add(row)
        await session.flush()
        return _silence_info(row)


async def silence_incident(
    services: Services, nid: int, duration: str, actor: str, now: datetime
) -> SilenceInfo:
    """A silence matching incident ``nid``'s fingerprint, and the incident muted now."""
    async with services.sessions() as session:
        row = await session.get(Notification, int(nid))
        if row is None:
            raise NotifyError("not_found", f"there is no notification #{nid}", id=nid)
        matchers = f"source={row.source} key={row.labels.get('key', '')}"
    info = await add_silence(services, matchers, duration, actor, now, comment=f"#{nid}")
    async with services.sessions() as session, session.begin():
        row = await _load(session, nid)
        if row.state in ("open", "acknowledged"):
            row.state, row.acted_by, row.acted_at = "silenced", f"silence #{info.id}", now
            row.due_kind, row.due_at = None, None
    return info


async def expire_silence(services: Services, sid: int, now: datetime) -> bool:
    """End silence ``sid`` now; False when there is no such silence in force."""
    async with services.sessions() as session, session.begin():
        row = await session.get(NotifySilence, int(sid))
        if row is None or row.ends_at <= now:
            return False
        row.ends_at = max(now, row.starts_at)
    return True


async def silences(services: Services, now: datetime) -> list[SilenceInfo]:
    """Silences and maintenance windows in force or still to come."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(NotifySilence).where(NotifySilence.ends_at > now).order_by(NotifySilence.id)
        )
        return [_silence_info(r) for r in rows]
