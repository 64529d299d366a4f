"""Download of an archive too big for Slack: the admin's one-time link goes to their DM
only (the channel reads that it went privately) and serves the archive once; an
operator gets the shell command."""

from __future__ import annotations

import dataclasses
import json
import re

import aiohttp
import pytest

from chatops.commands.backup import common
from chatops.web.server import make_web_app, start_web
from piyasa.backup.service import backup_service
from piyasa.sandbox.slack import dm_of
from tests.chatops.slack_server import slack_text
from tests.users.helpers import slack_tap

ADMIN, OPERATOR = "U0ADMIN", "U0OPERATOR"
URL_RE = re.compile(r"http://127\.0\.0\.1:\d+/backups/download/[A-Za-z0-9._-]+")


async def test_admin_link_in_the_dm_only_operator_gets_the_shell_command(
    bslack, slack_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = bslack.services
    runner, port = await start_web(make_web_app(services), "127.0.0.1", 0)
    extra = {**services.settings.extra, "PIYASA_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    services.settings = dataclasses.replace(services.settings, extra=extra)
    monkeypatch.setitem(common.DOWNLOAD_MAX, "slack", 1024)
    try:
        info = await backup_service(services).create()
        _, card, _ = await bslack.slash(OPERATOR, f"backup {info.id}")
        refused = await slack_tap(bslack, slack_server, OPERATOR, card, "Download")
        assert f"piyasa backup download {info.id}" in slack_text(refused)
        assert not URL_RE.search(slack_text(refused))

        _, card, _ = await bslack.slash(ADMIN, f"backup {info.id}")
        said = await slack_tap(bslack, slack_server, ADMIN, card, "Download")
        assert "sent it to you in a private chat" in slack_text(said)
        found = sorted(
            {
                (m["channel"], url)
                for m in slack_server.posted
                for url in URL_RE.findall(json.dumps(m))
            }
        )  # the message's text and its blocks both hold it
        assert [c for c, _ in found] == [dm_of(ADMIN)]  # one link, never into a channel
        async with aiohttp.ClientSession() as http:
            async with http.get(found[0][1]) as resp:
                assert resp.status == 200 and len(await resp.read()) == info.size_bytes
            async with http.get(found[0][1]) as resp:
                assert resp.status == 404
    finally:
        await runner.cleanup()
