"""Webhooks arrive signed, and the receiver's check is the documented code itself
(piyasa/admin/notify/channels/verify_example.py, shown in docs/notifications.md): it
accepts our signature and rejects a wrong one or a stale timestamp. 5xx and 429 are
retried with backoff (``Retry-After`` honoured); other 4xx are permanent."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from piyasa.admin.notify.channels import DeliveryError, OutgoingMessage, build_channel
from piyasa.admin.notify.channels.verify_example import verify
from piyasa.admin.notify.channels.webhook import WebhookChannel, sign
from piyasa.bench._procs import free_port

SECRET = "whsec-0123456789abcdef"
MESSAGE = OutgoingMessage(
    title="Kritik: Redis erişilemiyor",
    body_text="Redis 2 dakikadır yanıt vermiyor.",
    body_html=None,
    severity="critical",
    fingerprint="health:redis",
    source="health",
    link="http://127.0.0.1:8080/",
    fields={"bileşen": "redis"},
)


def verified(headers: dict[str, str], body: bytes) -> int:
    """The test receiver: the documented check, 401 when it fails."""
    ok = verify(SECRET, headers["X-Piyasa-Timestamp"], headers["X-Piyasa-Signature"], body)
    return 200 if ok else 401


def channel(url: str, waits: list[float] | None = None, **options: str) -> WebhookChannel:
    async def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    config = {"url": url, "secret": SECRET, **options}
    return WebhookChannel.from_config("hook", config, sleep=sleep)


async def test_signed_json_is_verified_by_the_documented_code(receiver: Any) -> None:
    box = await receiver()
    box.judge = verified
    hook = build_channel("webhook", "hook", {"url": f"{box.url}/in/tok", "secret": SECRET})
    assert await hook.check() == []

    await hook.send(MESSAGE)

    assert len(box.requests) == 1
    path, headers, body = box.requests[0]
    assert path == "/in/tok"
    assert headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    assert data["title"] == "Kritik: Redis erişilemiyor"
    assert data["text"] == MESSAGE.body_text
    assert (data["severity"], data["fingerprint"], data["source"]) == (
        "critical",
        "health:redis",
        "health",
    )
    assert data["fields"] == {"bileşen": "redis"}


async def test_a_wrong_secret_is_rejected_and_not_retried(receiver: Any) -> None:
    box = await receiver()
    box.judge = verified
    hook = build_channel("webhook", "hook", {"url": box.url, "secret": "not-the-receivers-secret"})
    with pytest.raises(DeliveryError) as caught:
        await hook.send(MESSAGE)
    assert caught.value.permanent
    assert "HTTP 401" in caught.value.reason
    assert len(box.requests) == 1


def test_documented_check_rejects_tampering_and_stale_timestamps() -> None:
    body = b'{"title":"x"}'
    now = time.time()
    stamp = str(int(now))
    good = sign(SECRET, stamp, body)
    assert verify(SECRET, stamp, good, body, now=now)
    assert not verify(SECRET, stamp, good, b'{"title":"y"}', now=now)  # body changed
    assert not verify("another-secret", stamp, good, body, now=now)
    assert not verify(SECRET, stamp, "v1=" + "0" * 64, body, now=now)
    assert not verify(SECRET, stamp, good, body, now=now + 301)  # a replay 5 min later
    assert not verify(SECRET, "soon", good, body, now=now)
    old = str(int(now) - 301)
    assert not verify(SECRET, old, sign(SECRET, old, body), body, now=now)


async def test_5xx_is_retried_with_backoff_then_delivered_once(receiver: Any) -> None:
    box = await receiver()
    box.judge = verified
    box.replies = [(503, {}), (502, {})]
    waits: list[float] = []
    await channel(box.url, waits, backoff_s="2").send(MESSAGE)
    assert len(box.requests) == 3  # two refusals, then the one delivery
    assert waits == [2.0, 4.0]
    # every attempt is signed afresh and verifies
    assert all(verified(h, b) == 200 for _, h, b in box.requests)


async def test_429_retry_after_is_honoured(receiver: Any) -> None:
    box = await receiver()
    box.replies = [(429, {"Retry-After": "7"})]
    waits: list[float] = []
    await channel(box.url, waits).send(MESSAGE)
    assert waits == [7.0]
    assert len(box.requests) == 2


async def test_a_long_retry_after_goes_back_to_the_outbox(receiver: Any) -> None:
    box = await receiver()
    box.replies = [(429, {"Retry-After": "120"})]
    waits: list[float] = []
    with pytest.raises(DeliveryError) as caught:
        await channel(box.url, waits, max_wait_s="30").send(MESSAGE)
    assert not caught.value.permanent
    assert caught.value.retry_after_s == 120.0
    assert waits == [] and len(box.requests) == 1


async def test_retries_spent_leave_a_retryable_error(receiver: Any) -> None:
    box = await receiver()
    box.replies = [(500, {})] * 5
    waits: list[float] = []
    with pytest.raises(DeliveryError) as caught:
        await channel(box.url, waits, retries="2", backoff_s="1").send(MESSAGE)
    assert not caught.value.permanent
    assert caught.value.retry_after_s == 4.0
    assert waits == [1.0, 2.0] and len(box.requests) == 3
    assert "HTTP 500" in caught.value.reason


async def test_other_4xx_is_permanent(receiver: Any) -> None:
    box = await receiver()
    box.replies = [(404, {})]
    with pytest.raises(DeliveryError) as caught:
        await channel(box.url, []).send(MESSAGE)
    assert caught.value.permanent
    assert len(box.requests) == 1


async def test_unreachable_receiver_is_retried_then_reported() -> None:
    port = free_port()
    waits: list[float] = []
    hook = channel(f"http://127.0.0.1:{port}/x/secret-path", waits, retries="1")
    problems = await hook.check()
    assert len(problems) == 1 and problems[0].startswith(f"cannot reach 127.0.0.1:{port}")
    with pytest.raises(DeliveryError) as caught:
        await hook.send(MESSAGE)
    assert not caught.value.permanent and waits == [1.0]
    assert "secret-path" not in caught.value.reason


@pytest.mark.parametrize(
    "url", ["ftp://example.test/hook", "javascript:alert(1)", "file:///etc/passwd", "127.0.0.1/x"]
)
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        build_channel("webhook", "hook", {"url": url, "secret": SECRET})


def test_a_missing_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret is required"):
        build_channel("webhook", "hook", {"url": "https://example.test/hook"})
