"""/backup: the schedule and the list for viewers; Backup now, Test backup, Verify and
Download for operators; Delete (typed confirmation) and the schedule editor for admins
(:mod:`chatops.commands.backup.edit`); Restore is its own step-up command
(:mod:`chatops.commands.backup.restore`).

Long work (a backup, a verify, a test restore) shows its step and percentage by editing
one message (:class:`~chatops.commands.backup.common.LiveProgress`), then the result with
its figures (MB, MB/s, rows) replaces the pressed screen.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatops.commands.backup.common import (
    DOWNLOAD_MAX,
    LiveProgress,
    problem,
    rate_text,
    rows_total,
    service,
    size_text,
)
from chatops.commands.backup.link import too_big
from chatops.commands.backup.views import card, overview, stale
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, File, Text, View
from piyasa.backup.service import BackupError, BackupInfo

log = logging.getLogger(__name__)


def _id(ctx: Context) -> str:
    return str(ctx.params.get("id") or "")[:200]


def _page(ctx: Context) -> int:
    try:
        return int(ctx.params.get("page", 1))
    except (TypeError, ValueError):
        return 1


@command("backup", role="viewer", order=70, args=(Arg("id"),))
async def backup(ctx: Context) -> View:
    """The overview; ``/backup ID`` opens that backup's card."""
    if ctx.args.get("id"):
        return await card(ctx, ctx.args["id"])
    return await overview(ctx)


@backup.action("page")
async def backup_page(ctx: Context) -> View:
    return await overview(ctx, _page(ctx))


@backup.action("card")
async def backup_card(ctx: Context) -> View:
    return await card(ctx, _id(ctx))


def _figures(ctx: Context, key: str, info: BackupInfo, seconds: float, **extra: Any) -> Alert:
    return Alert(
        "success",
        ctx.t(
            key,
            size=size_text(info.size_bytes),
            seconds=f"{seconds:.1f}",
            rate=rate_text(info.size_bytes, seconds),
            rows=rows_total(info),
            tables=len(info.rows),
            **extra,
        ),
    )


@backup.action("now", role="operator", params=(Param("kind", ("manual",), required=True),))
async def backup_now(ctx: Context) -> View:
    """Take a manual backup now (verified as it is stored)."""
    live = await LiveProgress(ctx, "backup.now.title").start()
    try:
        info = await service(ctx).create("manual", progress=live)
    except BackupError as exc:
        await live.done(False)
        return await overview(ctx, alert=problem(ctx, exc))
    except Exception:
        await live.done(False)
        raise
    await live.done()
    ctx.target = info.id
    return await card(ctx, info.id, _figures(ctx, "backup.now.ok", info, live.elapsed))


@backup.action("test", role="operator")
async def backup_test(ctx: Context) -> View:
    """Restore a backup (the newest when none is named) into a scratch database and
    compare its row counts with the manifest; the live database is not touched."""
    return await _check(ctx, "test")


@backup.action("verify", role="operator")
async def backup_verify(ctx: Context) -> View:
    """Checksum and decryption of the whole archive."""
    return await _check(ctx, "verify")


async def _check(ctx: Context, what: str) -> View:
    """Test restore (``what`` "test") or verify ("verify") with progress, then the card
    with the figures. A named backup that is gone says so before any progress; "test"
    without one takes the newest."""
    svc = service(ctx)
    backup_id = _id(ctx)
    if not backup_id and what == "test":
        try:
            newest = await svc.list()
        except BackupError as exc:
            return await overview(ctx, alert=problem(ctx, exc))
        if not newest:
            return await overview(ctx, alert=Alert("warning", ctx.t("backup.test.none")))
        backup_id = newest[0].id
    else:
        try:
            await svc.get(backup_id)  # a stale button: say so before any progress
        except BackupError as exc:
            return stale(ctx, exc)
    ctx.target = backup_id
    run = svc.test_restore if what == "test" else svc.verify
    live = await LiveProgress(ctx, f"backup.{what}.title").start()
    try:
        info = await run(backup_id, progress=live)
    except BackupError as exc:
        await live.done(False)
        return await _card_or_stale(ctx, backup_id, exc)
    await live.done()
    return await card(ctx, info.id, _figures(ctx, f"backup.{what}.ok", info, live.elapsed))


async def _card_or_stale(ctx: Context, backup_id: str, exc: BackupError) -> View:
    """The card with the reason on top; for an unknown backup the "gone" screen."""
    if exc.key == "backup.unknown":
        return stale(ctx, exc)
    return await card(ctx, backup_id, problem(ctx, exc))


@backup.action("download", role="operator")
async def backup_download(ctx: Context) -> View | None:
    """The archive as a file, sent privately, when this surface takes its size; else a
    one-time link for an admin or the shell command (:mod:`chatops.commands.backup.link`).
    The archive stays encrypted."""
    svc = service(ctx)
    backup_id = _id(ctx)
    try:
        info = await svc.get(backup_id)
    except BackupError as exc:
        return stale(ctx, exc)
    ctx.target = info.id
    limit = DOWNLOAD_MAX.get(ctx.surface, DOWNLOAD_MAX["telegram"])
    if info.size_bytes > limit:
        return await too_big(ctx, info, limit)
    try:
        path = await svc.open_archive(info.id)
    except BackupError as exc:
        return await _card_or_stale(ctx, info.id, exc)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    finally:
        release = getattr(svc.storage, "release", None)
        if release is not None:
            release(path)
    caption = ctx.t("backup.download.caption", id=info.id, size=size_text(len(data)))
    return View(
        blocks=[Text(ctx.t("backup.download.sent", id=info.id))],
        files=[File(info.id, data, caption=caption)],
        private=True,
        protect=True,
        edit=False,
    )


__all__ = ["backup", "backup_card", "backup_page"]
