"""The analytics digest in the notification outbox: what `/notify analytics daily|weekly`
schedules (with the incident digest, :mod:`.digest_jobs`) and how one fire becomes
delivery rows.

A fire at a given minute (the **slot**) adds one outbox row of kind ``analytics`` per chat
surface the user chose (``/notify channels``) and is linked on, destination
``user:<id>:<surface>``. The row's ``payload`` names the period (cadence and the slot as
its end) and the reader's timezone; the figures and the chart are computed when the row is
sent (a closed period: a retry shows the same figures), by the sender the chat layer
registers for the kind (``NotifyService.rich_senders``). The dedupe key is the user, the
surface and the slot, so a second fire of the same slot — another instance, a restart
that fires again — adds nothing, and a row that failed is retried by the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from piyasa.admin.notify import outbox
from piyasa.admin.notify.digest import DigestPlan
from piyasa.admin.notify.routing import Target
from piyasa.services import Services

KIND = "analytics"
JOB_PREFIX = "analytics-digest"  # APScheduler job ``analytics-digest:<user id>``
PERIODS = {"daily": "24h", "weekly": "7d"}  # cadence -> analytics period label


def slot(moment: datetime) -> datetime:
    """The fire's minute (UTC, seconds dropped): the period end and the dedupe unit."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def payload(plan: DigestPlan, end: datetime) -> dict[str, Any]:
    """What a row carries: ``{"user", "cadence", "period", "end" (ISO, UTC), "tz"}``."""
    return {
        "user": plan.user_id,
        "cadence": plan.cadence,
        "period": PERIODS[plan.cadence],
        "end": slot(end).isoformat(),
        "tz": plan.timezone,
    }


def period_of(data: dict[str, Any]) -> tuple[str, datetime]:
    """``(period label, end)`` of a row's payload; ValueError for a malformed one."""
    label = data.get("period")
    if label not in PERIODS.values():
        raise ValueError(f"bad analytics digest payload: {data!r}")
    return label, datetime.fromisoformat(str(data["end"]))


async def enqueue(
    services: Services,
    plan: DigestPlan,
    end: datetime,
    chats: dict[str, str | None],
    now: datetime,
) -> int:
    """Add the rows of one fire ending at ``end`` for the surfaces of ``chats`` (surface ->
    the user's chat there, None when not linked: skipped); how many were added (0 when this
    slot was enqueued already, here or by another instance)."""
    added = 0
    data = payload(plan, end)
    for surface, chat in chats.items():
        if chat is None:
            continue
        destination = f"user:{plan.user_id}:{surface}"
        try:
            async with services.sessions() as session, session.begin():
                row = outbox.enqueue(session, Target(destination, plan.lang), KIND, [], now)
                row.dedupe_key = outbox.dedupe_key(f"{destination}|{data['end']}", KIND, [])
                row.payload = data
        except IntegrityError:  # this slot went (or is going) out already
            continue
        added += 1
    return added


def window(data: dict[str, Any]) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a payload's digest covers."""
    label, end = period_of(data)
    return end - (timedelta(days=7) if label == "7d" else timedelta(hours=24)), end
