"""Download of an archive too big for Telegram: an admin gets a one-time, expiring link
from the real aiohttp server (on a free port), only in their private chat; it serves the
exact archive once; expired, used, forged and malformed links serve nothing; operators and
viewers are refused; a group reads only that the link went privately."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from chatops.commands.backup import common
from chatops.web.server import make_web_app, start_web
from piyasa.admin import audit
from piyasa.backup import links
from piyasa.backup.service import backup_service
from piyasa.db.models import AuditEntry, OneTimeCode
from tests.backup_chat.helpers import wait_text
from tests.chatops.harness import ADMIN_GROUP, TelegramWorld, wait_answer
from tests.chatops.test_role_sweep import expected_refusal
from tests.users.helpers import private, tap, token_for

URL_RE = re.compile(r"https?://\S+/backups/download/\S+")


def set_extra(world: TelegramWorld, **values: str) -> None:
    settings = world.services.settings
    world.services.settings = dataclasses.replace(settings, extra={**settings.extra, **values})


@pytest.fixture
async def web(btg: TelegramWorld, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The web server on a free port, its address as the public URL, and a 1 KB chat limit
    (below any archive) so every download needs the link."""
    runner, port = await start_web(make_web_app(btg.services), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    set_extra(btg, PIYASA_PUBLIC_URL=base)
    monkeypatch.setitem(common.DOWNLOAD_MAX, "telegram", 1024)
    try:
        yield base
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def codes(world: TelegramWorld) -> int:
    async with world.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OneTimeCode)) or 0)


async def link_for(world: TelegramWorld, role: str, backup_id: str) -> str:
    me = private(role)
    card = await world.say(role, f"/backup {backup_id}")
    mark = await world.press(role, me, card, token_for(card, "Download"))
    said = await wait_text(world, me, "One-time download link", mark)
    (url,) = URL_RE.findall(said["text"])
    assert "works once" in said["text"] and "expires in 15 min" in said["text"]
    return url


async def test_admin_link_serves_the_exact_archive_once_and_is_never_recorded(btg, web) -> None:
    svc = backup_service(btg.services)
    info = await svc.create()
    url = await link_for(btg, "admin", info.id)
    assert url.startswith(web + "/backups/download/")
    status, headers, body = await get(url)
    assert status == 200
    stored = (svc.storage.root / info.id).read_bytes()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(stored).hexdigest()
    assert headers["Content-Length"] == str(len(stored))
    assert headers["Content-Disposition"] == f'attachment; filename="{info.id}"'
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"

    again, _, page = await get(url)  # used up
    assert again == 404 and b"already used" in page and "kullanıldı".encode() in page
    rows = await audit.recent(btg.services, 50)
    assert any(r.action == "backup.link" and r.result == "used" for r in rows)
    made = [r for r in rows if r.action == "backup.download"]
    assert made and made[0].params.get("outcome") == "link" and made[0].target == info.id
    token = url.rsplit("/", 1)[1]
    secret = token.split(".")[0]
    async with btg.services.sessions() as session:
        everything = [repr((e.params, e.detail)) for e in await session.scalars(select(AuditEntry))]
    assert not any(secret in text for text in everything)


async def test_expired_link_serves_nothing_and_is_audited(btg, web) -> None:
    info = await backup_service(btg.services).create()
    set_extra(btg, PIYASA_BACKUP_LINK_TTL="900")
    url = await link_for(btg, "admin", info.id)
    # a link issued by an injected clock 16 minutes ago (expiry 15 minutes after issue)
    admin_id = btg.user_ids["admin"]
    link = await links.issue(btg.services, info.id, admin_id, base_url=web, now=time.time() - 960)
    status, headers, page = await get(link.url)
    assert status == 410 and b"expired" in page and headers["Cache-Control"] == "no-store"
    assert b"PBK" not in page and len(page) < 2000
    rows = await audit.recent(btg.services, 10, action="backup.link")
    assert rows[0].result == "expired" and rows[0].target == info.id
    status, _, _ = await get(url)  # the fresh one still works
    assert status == 200


async def test_forged_and_malformed_tokens_fail_and_change_nothing(btg, web) -> None:
    info = await backup_service(btg.services).create()
    url = await link_for(btg, "admin", info.id)
    before = await codes(btg)
    real = url.rsplit("/", 1)[1]
    forged = [
        "A" * 43 + "." + info.id,  # right shape, never issued
        real.split(".")[0] + ".piyasa-other.pbk",  # the real secret bound to another backup
        "not-a-token",
        real[:-1],
    ]
    for token in forged:
        status, _, page = await get(f"{web}/backups/download/{token}")
        assert status == 404 and len(page) < 2000, token
    assert await codes(btg) == before
    previewer = {"User-Agent": "TelegramBot (like TwitterBot)"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=previewer) as resp:
        assert resp.status == 404  # a link preview does not use the link up
    status, _, _ = await get(url)
    assert status == 200


async def test_operator_and_viewer_are_refused_no_link_made(btg, web) -> None:
    info = await backup_service(btg.services).create()
    before = await codes(btg)
    me = private("operator")
    card = await btg.say("operator", f"/backup {info.id}")
    said = await tap(btg, "operator", me, card, "Download")
    assert f"piyasa backup download {info.id}" in said["text"]
    assert "/backups/download/" not in said["text"]
    viewer = private("viewer")
    card = await btg.say("viewer", f"/backup {info.id}")
    qid = await btg.sb.press_button(
        viewer, viewer, card["message_id"], token_for(card, "Download"), bot_id=btg.bot_id
    )
    assert (await wait_answer(btg.sb, qid))["text"] == expected_refusal("viewer", "telegram")[:200]
    assert await codes(btg) == before


async def test_in_the_group_the_link_goes_privately_only(btg, web) -> None:
    info = await backup_service(btg.services).create()
    await btg.say("admin", "/backup")  # the admin has a private chat with the bot
    card = await btg.say("admin", f"/backup {info.id}", group=True)
    mark = await btg.press("admin", ADMIN_GROUP, card, token_for(card, "Download"))
    said = await wait_text(btg, private("admin"), "One-time download link", mark)
    assert URL_RE.search(said["text"])
    note = await btg.sb.wait_for_message(
        lambda m: "sent it to you in a private chat" in (m.get("text") or ""),
        chat_id=ADMIN_GROUP,
        edits=True,
        after=mark,
    )
    group_text: list[Any] = [m.get("text") or "" for m in btg.sb.sent(ADMIN_GROUP, btg.bot_id)]
    assert note and not any("/backups/download/" in t for t in group_text)


async def test_no_public_url_says_so_and_gives_the_shell_command(btg, web) -> None:
    info = await backup_service(btg.services).create()
    set_extra(btg, PIYASA_PUBLIC_URL="")
    before = await codes(btg)
    me = private("admin")
    card = await btg.say("admin", f"/backup {info.id}")
    said = await tap(btg, "admin", me, card, "Download")
    assert (
        "PIYASA_PUBLIC_URL" in said["text"] and f"piyasa backup download {info.id}" in said["text"]
    )
    assert await codes(btg) == before
