"""``GET /backups/download/<token>``: a backup archive through a one-time link
(:mod:`piyasa.backup.links`), for an admin whose archive is too big to send in chat.

The token is used up before a byte is sent: a used, expired, unknown or malformed token
gets a short English + Turkish page (404, or 410 when it was real but expired or its
backup is gone) and nothing else. The archive goes out with ``Content-Disposition:
attachment``, its length, ``Cache-Control: no-store`` and ``Referrer-Policy:
no-referrer``: from the file itself for local storage, streamed from the bucket for S3.
Link previewers (Telegram's and Slack's fetchers) get the 404 page without using the
link up. The token is never logged; the audit rows name the backup (``backup.link``,
results ``used`` and ``expired``). HEAD is not served (it would use the link up).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from piyasa.admin import audit
from piyasa.backup import links
from piyasa.backup.service import BackupError, backup_service
from piyasa.services import Services

log = logging.getLogger(__name__)

AUDIT_ACTION = "backup.link"
CHUNK_BYTES = 1024 * 1024
# User-Agent words of link-preview fetchers: they GET what a chat message links to.
PREVIEW_AGENTS = ("telegrambot", "slackbot", "slack-imgproxy", "facebookexternalhit")
_COMMON = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_PAGES = {
    404: (
        "Link not valid",
        "This download link is not valid: it was already used, or it never existed. "
        "Ask for a new one with /backup in chat.",
        "Bu indirme bağlantısı geçerli değil: daha önce kullanıldı ya da hiç yoktu. "
        "Sohbette /backup ile yenisini isteyin.",
    ),
    410: (
        "Link expired",
        "This download link has expired (or its backup was deleted). "
        "Ask for a new one with /backup in chat.",
        "Bu indirme bağlantısının süresi doldu (ya da yedeği silindi). "
        "Sohbette /backup ile yenisini isteyin.",
    ),
}


def setup_backup_download(app: web.Application, services: Services) -> None:
    """Add the route to ``app`` (the full app of :func:`chatops.web.server.make_web_app`,
    behind its body-size middleware)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await download(request, services)

    app.router.add_get(links.PATH_PREFIX + "{token}", handler, allow_head=False)


def _page(status: int) -> web.Response:
    title, en, tr = _PAGES[status]
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="robots" content="noindex"></head><body>'
        f'<p lang="en">{en}</p><p lang="tr">{tr}</p></body></html>'
    )
    return web.Response(
        status=status, text=body, content_type="text/html", charset="utf-8", headers=_COMMON
    )


async def _audit(services: Services, use: links.Use, result: str, **params: Any) -> None:
    try:
        await audit.record(
            services,
            actor=f"user:{use.user_id}",
            actor_user_id=use.user_id or None,
            surface="web",
            action=AUDIT_ACTION,
            target=use.backup_id,
            params=params,
            result=result,
        )
    except Exception:  # the download itself is not held up by the audit
        log.exception("audit write failed for %s", AUDIT_ACTION)


async def download(request: web.Request, services: Services) -> web.StreamResponse:
    """Use the token up and send the archive, or the 404/410 page."""
    agent = request.headers.get("User-Agent", "").lower()
    if any(word in agent for word in PREVIEW_AGENTS):
        return _page(404)
    use = await links.consume(services, request.match_info.get("token", ""))
    if not use.ok:
        if use.reason == "expired":
            await _audit(services, use, "expired")
            return _page(410)
        log.info("backup download link refused: %s", use.reason)
        return _page(404)
    svc = backup_service(services)
    try:
        info = await svc.get(use.backup_id)
    except BackupError as exc:
        await _audit(services, use, "failed", reason=exc.key)
        return _page(410)
    headers = {
        **_COMMON,
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{info.id}"',
        "X-Content-Type-Options": "nosniff",
    }
    await _audit(services, use, "used", size_bytes=info.size_bytes)
    opener = getattr(svc.storage, "open_stream", None)
    if opener is None:  # local storage: the stored file itself
        path = svc.storage.fetch(info.id)
        return web.FileResponse(path, chunk_size=CHUNK_BYTES, headers=headers)
    return await _stream(request, opener, info.id, headers)


async def _stream(
    request: web.Request, opener: Any, backup_id: str, headers: dict[str, str]
) -> web.StreamResponse:
    """Copy the object store's body to the client in :data:`CHUNK_BYTES` pieces (memory
    stays at one chunk); ``opener(backup_id)`` gives ``(body with .read(n), length)``."""
    try:
        body, length = await asyncio.to_thread(opener, backup_id)
    except BackupError:
        return _page(410)
    response = web.StreamResponse(headers=headers)
    response.content_length = length
    await response.prepare(request)
    try:
        while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
            await response.write(chunk)
    finally:
        body.close()
    await response.write_eof()
    return response
