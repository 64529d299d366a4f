"""Notification tests: a clock moved by hand, recording chat senders, a fake channel
implementing the Channel interface (for pipeline tests that need a channel to fail on
demand), and the real SMTP server and webhook receivers of ``channels/conftest.py``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from piyasa.admin.notify import Timers
from piyasa.admin.notify.channels.base import OutgoingMessage
from piyasa.admin.notify.events import Event
from piyasa.admin.notify.service import NotifyService
from piyasa.admin.notify.store import Item
from piyasa.config import Secret
from piyasa.services import Services

# the real far ends (aiosmtpd, aiohttp receivers) for every notification test, not only
# the channel tests
from tests.notify.channels.conftest import receiver, smtp_server, tls_files  # noqa: F401

ADMIN_CHAT = -1009900000001
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def move(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


class Sender:
    """A chat surface that records what it was asked to post; ``fail`` makes it raise."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, list[Item], str, str]] = []
        self.fail: Exception | None = None

    async def __call__(self, chat: str, items: list[Item], lang: str, kind: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.posts.append((chat, items, lang, kind))

    def ids(self, chat: str | None = None) -> list[list[int]]:
        return [[i.id for i in items] for c, items, _l, _k in self.posts if chat in (None, c)]


class FakeChannel:
    """Implements the Channel protocol of channels/base.py; records what it was sent."""

    sent: dict[str, list[OutgoingMessage]] = {}

    def __init__(self, kind: str, name: str, config: dict[str, str]) -> None:
        self.kind, self.name, self.config = kind, name, config
        if config.get("url", "").startswith("ftp:"):
            raise ValueError("the webhook URL must be http(s)")

    async def send(self, message: OutgoingMessage) -> None:
        if self.config.get("broken"):
            raise ConnectionError("connection refused")
        FakeChannel.sent.setdefault(self.name, []).append(message)

    async def check(self) -> list[str]:
        return ["unreachable"] if self.config.get("broken") else []


def warning(key: str = "redis", source: str = "health", **labels: str) -> Event:
    return Event(
        source, key, "warning", "alerts.health.warning.title", {"component": key}, labels=labels
    )


def critical(key: str = "database", source: str = "health", **labels: str) -> Event:
    return Event(
        source, key, "critical", "alerts.health.critical.title", {"component": key}, labels=labels
    )


def resolved(event: Event) -> Event:
    return dataclasses.replace(event, resolved=True)


def with_admin_chat(services: Services) -> None:
    services.settings = dataclasses.replace(
        services.settings,
        admin_bot_token=Secret("7100000000:TEST-token"),
        admin_chat_ids=(ADMIN_CHAT,),
        lang="en",
    )


def build(
    services: Services, clock: Clock, sender: Sender | None = None, **kw: Any
) -> NotifyService:
    svc = NotifyService(
        services,
        clock=clock,
        channel_factory=FakeChannel,
        retry_s=10.0,
        timers=kw.pop("timers", Timers()),
        **kw,
    )
    if sender is not None:
        svc.add_sender("telegram", sender)
    return svc


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def notify(services: Services, clock: Clock) -> AsyncIterator[tuple[NotifyService, Sender]]:
    with_admin_chat(services)
    FakeChannel.sent = {}
    sender = Sender()
    svc = build(services, clock, sender)
    await svc.start(background=False)
    yield svc, sender
    await svc.stop()
