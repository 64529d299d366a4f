"""Apprise carries notifications to the long tail of services; here to local receivers
through the URL forms that take a custom host: generic JSON, ntfy (self-hosted) and
Microsoft Teams' Power Automate workflows (HTTPS, certificate check off for the test's
self-signed certificate). Discord's URL has no host part (always discord.com), so it is
left to Apprise's own tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from piyasa.admin.notify.channels import DeliveryError, OutgoingMessage, build_channel
from tests.notify.channels.conftest import TLSFiles

MESSAGE = OutgoingMessage(
    title="Disk almost full",
    body_text="Free disk space is 7 %.",
    body_html="<p>ignored by Apprise channels</p>",
    severity="warning",
    fingerprint="host:disk",
    source="health",
    link="http://127.0.0.1:8080/",
)


async def test_json_receiver_gets_title_body_and_type(receiver: Any) -> None:
    box = await receiver()
    host = box.url.removeprefix("http://")
    channel = build_channel("apprise", "generic", {"url": f"json://{host}/alerts"})
    assert await channel.check() == []

    await channel.send(MESSAGE)

    assert len(box.requests) == 1
    path, _, body = box.requests[0]
    assert path.startswith("/alerts")
    data = json.loads(body)
    assert data["title"] == "Disk almost full"
    assert "Free disk space is 7 %." in data["message"]
    assert "http://127.0.0.1:8080/" in data["message"]
    assert data["type"] == "warning"


async def test_ntfy_on_a_self_hosted_server(receiver: Any) -> None:
    box = await receiver()
    host = box.url.removeprefix("http://")
    channel = build_channel("apprise", "phone", {"url": f"ntfy://{host}/piyasa-alerts"})
    await channel.send(MESSAGE)
    assert len(box.requests) == 1
    path, headers, body = box.requests[0]
    text = path + json.dumps(headers) + body.decode()
    assert "piyasa-alerts" in text
    assert "Disk almost full" in text and "Free disk space is 7 %." in text


async def test_teams_workflow_over_https(receiver: Any, tls_files: TLSFiles) -> None:
    box = await receiver(ssl_context=tls_files.server_context())
    host = box.url.removeprefix("https://")
    url = f"workflow://{host}/wf123/sig456?verify=no"
    channel = build_channel("apprise", "teams", {"url": url})
    await channel.send(MESSAGE)
    assert len(box.requests) == 1
    path, _, body = box.requests[0]
    assert "/workflows/wf123/" in path and "sig=sig456" in path
    assert "Disk almost full" in body.decode()


async def test_a_refusing_service_is_a_retryable_error(receiver: Any) -> None:
    box = await receiver()
    box.replies = [(500, {})]
    host = box.url.removeprefix("http://")
    channel = build_channel("apprise", "generic", {"url": f"json://{host}/alerts"})
    with pytest.raises(DeliveryError) as caught:
        await channel.send(MESSAGE)
    assert not caught.value.permanent
    assert (
        caught.value.reason
        == "the json:// service did not accept the notification (see the log for Apprise's reason)"
    )


def test_an_url_apprise_does_not_know_is_refused_without_its_token() -> None:
    with pytest.raises(ValueError) as caught:
        build_channel("apprise", "x", {"url": "nosuchservice://TOKEN123456/abc"})
    assert "Apprise does not understand this nosuchservice:// URL" in str(caught.value)
    assert "TOKEN123456" not in str(caught.value)


def test_repr_hides_the_url() -> None:
    channel = build_channel("apprise", "d", {"url": "discord://1234567/SECRETTOKEN987"})
    assert "SECRETTOKEN987" not in repr(channel)
