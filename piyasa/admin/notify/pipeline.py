"""From events to owed notices: dedupe, thresholds, silences, inhibition and the
Alertmanager timers, all kept in the ``notifications`` row so a restart resumes them.

- **Dedupe**: one active incident per fingerprint; a repeat event raises ``count``.
- **Thresholds**: ``failure_threshold`` firing events in a row confirm an incident,
  ``success_threshold`` resolved ones end it. A recovery is told only after
  ``resolve_wait_s``; an incident that fires again within ``group_interval_s`` of its
  resolution is reopened (flapping is one incident), and a recovery not yet told is then
  never told.
- **Timers**: a confirmed incident is owed a notice at ``due_at``: at once when critical
  (critical bypasses group_wait), else with its group: when another notice of the group is
  already owed, at that time; within ``group_interval_s`` of the group's last notice, at
  the end of that interval; otherwise after ``group_wait_s``. An open incident, once told,
  is owed a repeat every ``repeat_interval_s`` (not when acknowledged, later when
  snoozed).
- **Silences and inhibition** mute (state ``silenced``, nothing owed); they are checked
  when an event arrives and again when its notice falls due.

Every function here works inside the caller's session (one transaction per event or per
flush), on the caller's ``now``: tests move a clock, they never sleep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin.notify.events import SEVERITY_RANK, Event
from piyasa.admin.notify.rules import InhibitRule, Timers, matches
from piyasa.db.notify_models import Notification, NotifySilence

ACTIVE = ("open", "acknowledged", "silenced")


@dataclass
class Batch:
    """What one transaction storing several events reads once (:func:`prefetch`): the
    silences (a silence added meanwhile counts from the next batch), and for the
    batch's fingerprints their active incident and their latest incident resolved by
    itself, kept up to date as the batch's events change them."""

    silences: list[NotifySilence] | None = None
    fingerprints: set[str] = field(default_factory=set)
    current: dict[str, Notification] = field(default_factory=dict)
    resolved: dict[str, Notification] = field(default_factory=dict)
    inhibitors: dict[InhibitRule, Notification] = field(default_factory=dict)  # found ones


async def prefetch(
    session: AsyncSession, batch: Batch, fingerprints: set[str], since: datetime
) -> None:
    """Load (and lock) in two queries the active incidents of ``fingerprints`` and
    their latest incidents resolved (not by hand) since ``since`` (the earliest event
    time of the batch minus ``group_interval``)."""
    if not fingerprints:
        return
    wanted = sorted(fingerprints)
    for row in await session.scalars(
        select(Notification).where(Notification.active_fingerprint.in_(wanted)).with_for_update()
    ):
        if row.active_fingerprint is not None:
            batch.current[row.active_fingerprint] = row
    for row in await session.scalars(
        select(Notification)
        .where(
            Notification.fingerprint.in_(wanted),
            Notification.state == "resolved",
            Notification.acted_by.is_(None),
            Notification.resolved_at >= since,
        )
        .order_by(Notification.resolved_at)
        .with_for_update()
    ):
        batch.resolved[row.fingerprint] = row  # the latest wins
    batch.fingerprints |= fingerprints


def group_key(labels: dict[str, str], timers: Timers) -> str:
    return "|".join(labels.get(k, "") for k in timers.group_by)[:200]


async def active_silence(
    session: AsyncSession, labels: dict[str, str], now: datetime, batch: Batch | None = None
) -> NotifySilence | None:
    """The first silence or maintenance window in force at ``now`` matching ``labels``."""
    if batch is not None:
        if batch.silences is None:
            batch.silences = list(
                await session.scalars(select(NotifySilence).where(NotifySilence.ends_at > now))
            )
        rows: Sequence[NotifySilence] = [
            r for r in batch.silences if r.starts_at <= now < r.ends_at
        ]
    else:
        rows = list(
            await session.scalars(
                select(NotifySilence).where(
                    NotifySilence.starts_at <= now, NotifySilence.ends_at > now
                )
            )
        )
    for silence in rows:
        if matches(silence.matchers, labels):
            return silence
    return None


def _narrowed(rule: InhibitRule) -> list[Any]:
    """SQL conditions implied by ``rule.source``'s equality matchers on columns (so the
    inhibitor lookup reads the few candidate rows, not every active incident)."""
    eq = {name: value for name, op, value in rule.source if op == "="}
    out: list[Any] = []
    if "source" in eq and "key" in eq:
        out.append(Notification.fingerprint == f"{eq['source']}:{eq['key']}"[:200])
    elif "source" in eq:
        out.append(Notification.source == eq["source"])
    if "severity" in eq:
        out.append(Notification.severity == eq["severity"])
    return out


async def inhibitor(
    session: AsyncSession,
    labels: dict[str, str],
    rules: Sequence[InhibitRule],
    exclude: int | None = None,
    batch: Batch | None = None,
) -> Notification | None:
    """An active, unmuted incident that inhibits an event with ``labels``, if any."""
    wanted = [r for r in rules if matches(list(r.target), labels)]
    for rule in wanted:
        known = batch.inhibitors.get(rule) if batch is not None else None
        if (  # found earlier in this batch, and (in memory) still an active cause
            known is not None
            and known.id != exclude
            and known.active_fingerprint is not None
            and known.state in ("open", "acknowledged")
            and matches(list(rule.source), known.labels)
        ):
            return known
        rows = await session.scalars(
            select(Notification).where(
                Notification.active_fingerprint.is_not(None),
                Notification.state.in_(("open", "acknowledged")),
                *_narrowed(rule),
            )
        )
        for row in rows:
            if row.id != exclude and matches(list(rule.source), row.labels):
                if batch is not None:
                    batch.inhibitors[rule] = row
                return row
    return None


async def muted_by(
    session: AsyncSession,
    labels: dict[str, str],
    now: datetime,
    rules: Sequence[InhibitRule],
    exclude: int | None = None,
    batch: Batch | None = None,
) -> str | None:
    """Why an event with ``labels`` is muted right now ("silence #3", "inhibited by #9")."""
    silence = await active_silence(session, labels, now, batch)
    if silence is not None:
        return f"{silence.kind} #{silence.id}"
    cause = await inhibitor(session, labels, rules, exclude, batch)
    return f"inhibited by #{cause.id}" if cause is not None else None


async def _schedule(
    session: AsyncSession,
    row: Notification,
    kind: str,
    now: datetime,
    timers: Timers,
    *,
    urgent: bool = False,
) -> None:
    """Owe ``row`` a ``kind`` notice, at the time its severity and group allow
    (``urgent``: at once, a critical incident new or escalated)."""
    row.due_kind = kind
    if urgent:
        row.due_at = now
        return
    if kind == "resolved":
        row.due_at = now + timedelta(seconds=timers.resolve_wait_s)
        return
    others = Notification.group_key == row.group_key
    if row.id is not None:
        others = others & (Notification.id != row.id)
    owed = Notification.due_kind.in_(("firing", "resolved"))
    pending, last = (  # one query: the group's next owed notice, and its last one told
        await session.execute(
            select(
                func.min(Notification.due_at).filter(owed), func.max(Notification.notified_at)
            ).where(others)
        )
    ).one()
    if pending is not None:
        row.due_at = max(pending, now)
        return
    interval = timedelta(seconds=timers.group_interval_s)
    if row.notified_at is not None and (last is None or row.notified_at > last):
        last = row.notified_at
    if last is not None and now - last < interval:
        row.due_at = last + interval
    else:
        row.due_at = now + timedelta(seconds=timers.group_wait_s)


async def _current(
    session: AsyncSession, fingerprint: str, batch: Batch | None = None
) -> Notification | None:
    if batch is not None and fingerprint in batch.fingerprints:  # prefetched, kept current
        known = batch.current.get(fingerprint)
        return known if known is not None and known.active_fingerprint == fingerprint else None
    return await session.scalar(
        select(Notification).where(Notification.active_fingerprint == fingerprint).with_for_update()
    )


async def _recently_resolved(
    session: AsyncSession,
    fingerprint: str,
    now: datetime,
    timers: Timers,
    batch: Batch | None = None,
) -> Notification | None:
    since = now - timedelta(seconds=timers.group_interval_s)
    if batch is not None and fingerprint in batch.fingerprints:  # prefetched, kept current
        row = batch.resolved.get(fingerprint)
        ok = row is not None and row.state == "resolved" and row.acted_by is None
        return row if ok and row.resolved_at is not None and row.resolved_at >= since else None
    return await session.scalar(
        select(Notification)
        .where(
            Notification.fingerprint == fingerprint,
            Notification.state == "resolved",
            Notification.acted_by.is_(None),  # resolved by hand: a new firing is new
            Notification.resolved_at >= since,
        )
        .order_by(Notification.resolved_at.desc())
        .limit(1)
        .with_for_update()
    )


async def ingest(
    session: AsyncSession,
    event: Event,
    now: datetime,
    timers: Timers,
    rules: Sequence[InhibitRule],
    batch: Batch | None = None,
) -> Notification | None:
    """Fold ``event`` into its incident; returns the row (None: a recovery of nothing).
    ``batch``: shared by the events of one transaction (see :class:`Batch`)."""
    fp = event.fingerprint
    row = await _current(session, fp, batch)
    if event.resolved:
        if row is None:
            return None
        row = await _recover(session, row, now, timers)
        if batch is not None and row.state == "resolved":
            batch.resolved[fp] = row
        return row
    labels = event.all_labels()
    reopened = False
    if row is None:
        row = await _recently_resolved(session, fp, now, timers, batch)
        if row is not None:  # flapping: the same incident again
            reopened = True
            row.active_fingerprint, row.state, row.resolved_at = fp, "open", None
            row.fail_streak, row.ok_streak = 0, 0
            if row.due_kind == "resolved":  # its recovery was never told: tell nothing
                row.due_kind = "repeat"
                row.due_at = (row.notified_at or now) + timedelta(seconds=timers.repeat_interval_s)
    if row is None:
        row = Notification(
            fingerprint=fp,
            active_fingerprint=fp,
            source=event.source,
            severity=event.severity,
            title_key=event.title_key,
            body_key=event.body_key,
            params=dict(event.params),
            labels=labels,
            group_key=group_key(labels, timers),
            state="open",
            first_seen=now,
            last_seen=now,
            count=0,
            fail_streak=0,
            ok_streak=0,
            confirmed=False,
            notify_seq=0,
        )
        session.add(row)
        await session.flush()
    if batch is not None:
        batch.current[fp] = row
    escalated = SEVERITY_RANK[event.severity] < SEVERITY_RANK.get(row.severity, 9)
    row.count += 1
    row.last_seen = now
    row.fail_streak += 1
    row.ok_streak = 0
    row.severity, row.title_key, row.body_key = event.severity, event.title_key, event.body_key
    if row.params != event.params:  # unchanged JSON is not written again
        row.params = dict(event.params)
    if row.labels != labels:
        row.labels = labels
    newly_confirmed = not row.confirmed and row.fail_streak >= timers.failure_threshold
    row.confirmed = row.confirmed or newly_confirmed
    why = await muted_by(session, labels, now, rules, exclude=row.id, batch=batch)
    if why is not None:
        row.state, row.acted_by, row.acted_at = "silenced", why, now
        if row.due_kind in ("firing", "repeat"):
            row.due_kind, row.due_at = None, None
        return row
    if row.state == "silenced":  # the silence expired (or its cause ended): open again
        by = row.acted_by or ""
        row.state, row.acted_by, row.acted_at = "open", None, None
        # told again after a silence (Alertmanager re-notifies when one expires), and
        # after an inhibition only when it was never told
        if row.notified_kind in (None, "resolved") or not by.startswith("inhibited"):
            newly_confirmed = row.confirmed
    told = row.notified_kind in ("firing", "repeat")
    if row.state == "open" and row.confirmed and row.due_kind != "firing":
        if newly_confirmed or (escalated and told) or (reopened and not told):
            urgent = row.severity == "critical" and not reopened
            await _schedule(session, row, "firing", now, timers, urgent=urgent)
    return row


async def _recover(
    session: AsyncSession, row: Notification, now: datetime, timers: Timers
) -> Notification:
    row.ok_streak += 1
    row.fail_streak = 0
    row.last_seen = now
    if row.ok_streak < timers.success_threshold:
        return row
    told = row.notified_kind in ("firing", "repeat")
    row.state, row.resolved_at, row.active_fingerprint = "resolved", now, None
    row.snoozed_until = None
    if told:
        await _schedule(session, row, "resolved", now, timers)
    else:  # never told: nobody needs to hear it is over
        row.due_kind, row.due_at = None, None
    return row


async def due(session: AsyncSession, now: datetime, limit: int = 500) -> list[Notification]:
    """Incidents whose notice is owed by ``now``, oldest first, locked for this flush."""
    rows = await session.scalars(
        select(Notification)
        .where(Notification.due_at <= now)
        .order_by(Notification.due_at, Notification.id)
        .limit(limit)
        .with_for_update()
    )
    return list(rows)


async def release_inhibited(
    session: AsyncSession, now: datetime, timers: Timers, rules: Sequence[InhibitRule]
) -> int:
    """Health incidents muted by an inhibition whose cause has ended open again and are
    told, as Alertmanager does once the source alert resolves: a component still down after
    the database came back is not left silenced. Only health incidents: they are states
    that end with a recovery event; a one-off event (a worker's crash during the outage)
    stays muted, listed in /alerts with its cause. Returns how many were released."""
    rows = await session.scalars(
        select(Notification)
        .where(
            Notification.state == "silenced",
            Notification.source == "health",
            Notification.acted_by.like("inhibited by #%"),
        )
        .with_for_update()
    )
    released = 0
    for row in rows:
        if await muted_by(session, row.labels, now, rules, exclude=row.id) is not None:
            continue
        row.state, row.acted_by, row.acted_at = "open", None, None
        if row.confirmed and row.notified_kind in (None, "resolved"):
            await _schedule(session, row, "firing", now, timers)
        released += 1
    return released


async def still_owed(
    session: AsyncSession,
    row: Notification,
    now: datetime,
    rules: Sequence[InhibitRule],
) -> bool:
    """Whether ``row``'s owed notice goes out now; otherwise its timer is moved or cleared."""
    kind = row.due_kind
    if kind in ("firing", "repeat"):
        if row.state != "open" or (kind == "repeat" and row.state == "acknowledged"):
            row.due_kind, row.due_at = None, None
            return False
        if row.snoozed_until is not None and row.snoozed_until > now:
            row.due_kind, row.due_at = "repeat", row.snoozed_until
            return False
        why = await muted_by(session, row.labels, now, rules, exclude=row.id)
        if why is not None:
            row.state, row.acted_by, row.acted_at = "silenced", why, now
            row.due_kind, row.due_at = None, None
            return False
        return True
    if kind == "resolved":
        return True
    row.due_kind, row.due_at = None, None
    return False


def mark_told(row: Notification, now: datetime, timers: Timers) -> None:
    """``row``'s notice was handed to the outbox: remember it, owe the next repeat."""
    row.notified_at, row.notified_kind = now, row.due_kind
    row.notify_seq += 1
    if row.state == "open":
        row.due_kind = "repeat"
        row.due_at = now + timedelta(seconds=timers.repeat_interval_s)
    else:
        row.due_kind, row.due_at = None, None
