"""Download for an archive too big for the chat: admins get a one-time, expiring link from
Piyasa's web server (:mod:`piyasa.backup.links`, served by
:mod:`chatops.web.backup_download`); operators, and admins when no public URL is
configured (``PIYASA_PUBLIC_URL``), get the shell command.

The link is a secret shown once: it goes through :func:`chatops.handover.hand_over` — only
to the admin's private chat / Slack DM (from a group the group reads that it was sent
privately), voided when that message fails. It is never logged nor audited: the audit row
says ``outcome: link`` and the expiry.
"""

from __future__ import annotations

import time

from chatops import handover
from chatops.commands.backup.common import size_text
from chatops.commands.backup.views import card
from chatops.context import Context
from chatops.views import Alert, Text, View
from piyasa.admin import issue
from piyasa.admin.identity import role_level
from piyasa.admin.users.model import Actor
from piyasa.backup import links
from piyasa.backup.service import BackupInfo


def shell_command(info: BackupInfo) -> str:
    return f"piyasa backup download {info.id} {info.id}"


async def too_big(ctx: Context, info: BackupInfo, limit: int) -> View | None:
    """What the asker gets for an archive over ``limit`` bytes (the surface's upload limit):
    the link for an admin when a public URL is set, else the refusal with the shell
    command (admins also read that a public URL would give them a link)."""
    refusal = ctx.t(
        f"backup.download.too_big.{ctx.surface}",
        size=size_text(info.size_bytes),
        limit=size_text(limit),
        cmd=shell_command(info),
    )
    admin = ctx.actor is not None and ctx.actor.level >= role_level("admin")
    base = links.public_url(ctx.services.settings)
    if not admin:
        ctx.audit_params["outcome"] = "too_big"
        return await card(ctx, info.id, Alert("warning", refusal))
    if not base:
        ctx.audit_params["outcome"] = "too_big_no_public_url"
        text = (
            refusal + "\n\n" + ctx.t("backup.download.no_public_url", var=links.PUBLIC_URL_SETTING)
        )
        return await card(ctx, info.id, Alert("warning", text))
    return await _hand_over_link(ctx, info, base)


async def _hand_over_link(ctx: Context, info: BackupInfo, base: str) -> View | None:
    user_id = ctx.actor.user_id if ctx.actor else 0
    actor = Actor(ctx.actor_label, user_id, ctx.surface)
    made: list[links.Link] = []

    async def make() -> issue.Issued:
        link = await links.issue(ctx.services, info.id, user_id, base_url=base)
        made.append(link)

        async def undo() -> bool:
            return await links.void(ctx.services, link.token) > 0

        return issue.Issued(
            ctx.services,
            actor,
            "backup.link",
            info.id,
            user_id,
            link.url,
            _undo=undo,
        )

    def show(issued: issue.Issued) -> View:
        link = made[-1]
        minutes = max(1, round((link.expires_at.timestamp() - time.time()) / 60))
        return View(
            title=ctx.t("backup.download.link.title"),
            blocks=[
                Text(
                    ctx.t("backup.download.link.what", id=info.id, size=size_text(info.size_bytes))
                ),
                Text(issued.secret),
                Text(
                    ctx.t(
                        "backup.download.link.when",
                        minutes=minutes,
                        at=link.expires_at.strftime("%H:%M UTC"),
                    )
                ),
            ],
            context_help=False,
        )

    answer = await handover.hand_over(ctx, make, show)
    ctx.target = info.id
    ctx.audit_params["outcome"] = "link"
    if made:
        ctx.audit_params["expires_at"] = made[-1].expires_at.isoformat(timespec="seconds")
    return answer
