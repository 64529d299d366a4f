"""The tutorials of running Piyasa: "set up alerts" (a destination, the reader's own
notifications on, a test notification delivered) and "take and test a backup" (an
archive, verified, test-restored). Each check reads the real state."""

from __future__ import annotations

from sqlalchemy import func, select

from chatops.commands.tutorials.model import Tutorial, always, define, say
from chatops.context import Context
from piyasa.admin.notify import routing
from piyasa.admin.setup.checks import alert_destinations
from piyasa.backup.model import BackupError, BackupInfo
from piyasa.db.models import AuditEntry
from piyasa.db.notify_models import NotifyChannel, NotifyDelivery

# -- set up alerts -------------------------------------------------------------------------


async def _has_destination(ctx: Context) -> str | None:
    """An admin chat or Slack alert channel configured, or an enabled /addchannel channel."""
    if alert_destinations(ctx.services.settings):
        return None
    async with ctx.services.sessions() as session:
        channels = await session.scalar(
            select(func.count()).select_from(NotifyChannel).where(NotifyChannel.enabled.is_(True))
        )
    return None if channels else say(ctx, "tutorial.alerts.missing2")


async def _notify_on(ctx: Context) -> str | None:
    assert ctx.actor is not None
    prefs = await routing.get_prefs(ctx.services, ctx.actor.user_id)
    return None if prefs.subscribed else say(ctx, "tutorial.alerts.missing3")


async def _test_sent(ctx: Context) -> str | None:
    """A test notification was delivered: through the outbox (/alerts → Send test) or
    straight through a channel (/channels → Test) without an error."""
    async with ctx.services.sessions() as session:
        delivered = await session.scalar(
            select(func.count())
            .select_from(NotifyDelivery)
            .where(NotifyDelivery.kind == "test", NotifyDelivery.state == "sent")
        )
        if not delivered:
            tested = await session.scalars(
                select(AuditEntry.params).where(
                    AuditEntry.action == "channels.test", AuditEntry.result == "ok"
                )
            )
            delivered = sum(1 for p in tested if not (p or {}).get("error"))
        if delivered:
            return None
        failed = await session.scalar(
            select(NotifyDelivery.last_error)
            .where(NotifyDelivery.kind == "test", NotifyDelivery.state == "failed")
            .order_by(NotifyDelivery.id.desc())
            .limit(1)
        )
    if failed:
        return say(ctx, "tutorial.alerts.missing4_failed", error=str(failed)[:200])
    return say(ctx, "tutorial.alerts.missing4")


ALERTS = define(
    Tutorial(
        "alerts", "tutorial.alerts", (always, _has_destination, _notify_on, _test_sent, always), 3
    )
)


# -- take and test a backup ------------------------------------------------------------------


async def _backups(ctx: Context) -> list[BackupInfo] | str:
    """Every archive, or what stops listing them (storage unreachable), said for the reader."""
    from piyasa.backup.service import backup_service

    try:
        return await backup_service(ctx.services).list()
    except BackupError as exc:
        return say(ctx, "tutorial.backup.unreadable", reason=ctx.t(exc.key, **exc.params))


async def _has_backup(ctx: Context) -> str | None:
    found = await _backups(ctx)
    if isinstance(found, str):
        return found
    return None if found else say(ctx, "tutorial.backup.missing2")


async def _verified(ctx: Context) -> str | None:
    found = await _backups(ctx)
    if isinstance(found, str):
        return found
    if any(b.verified_at for b in found):
        return None
    return say(ctx, "tutorial.backup.missing3")


async def _test_restored(ctx: Context) -> str | None:
    found = await _backups(ctx)
    if isinstance(found, str):
        return found
    if any(b.test_restored_at for b in found):
        return None
    return say(ctx, "tutorial.backup.missing4")


BACKUP = define(
    Tutorial(
        "backup",
        "tutorial.backup",
        (always, _has_backup, _verified, _test_restored, always),
        4,
    )
)
