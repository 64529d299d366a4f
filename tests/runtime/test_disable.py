"""Kicked, gone, revoked: the fleet disables the pair (or the bot), says so, and stops paying.

Telegram's refusals come from the sandbox exactly as Telegram words them: 403 "Forbidden:
bot was kicked from the supergroup chat", 400 "Bad Request: chat not found", 401
"Unauthorized". The LLM is the in-process offline generator, counted per (persona, topic):
each chat has its own topic, so a generation for a disabled pair would show.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from sqlalchemy import select, update

from piyasa.admin.health import State, Thresholds
from piyasa.admin.health.fleet_probes import RuntimeProbe
from piyasa.admin.health.probes import ProbeContext
from piyasa.db.models import Bot, Chat, Message
from piyasa.db.runtime_models import BotChat, OutboxItem, WorkerEvent
from piyasa.runtime.disable import classify_refusal
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OfflineProvider
from tests.runtime.helpers import FleetClock, drive, namespace, seed, until, with_sandbox


class Recording(OfflineProvider):
    """The offline generator, remembering who generated about what."""

    def __init__(self) -> None:
        super().__init__(seed=3)
        self.calls: list[tuple[str, str]] = []

    async def complete(self, prompt):  # type: ignore[no-untyped-def]
        self.calls.append((str(prompt.persona.get("name")), prompt.topic))
        return await super().complete(prompt)


async def two_chats(services, sandbox, bots: int = 3) -> tuple[list[Bot], list[Chat]]:
    """Every bot in two groups; Group 0 talks about bist, Group 1 about fx."""
    bot_rows, chat_rows = await seed(services, sandbox, bots=bots, chats=2)
    async with services.sessions() as session, session.begin():
        for chat, topic in zip(chat_rows, ("bist", "fx"), strict=True):
            await session.execute(update(Chat).where(Chat.id == chat.id).values(topics=[topic]))
    return bot_rows, chat_rows


def start_fleet(
    services, sandbox, provider: Recording, clock: FleetClock, receive: str = "off"
) -> Fleet:
    """A fleet on the sandbox's timeline: ``drive`` moves both (no waiting out limits)."""
    with_sandbox(services, sandbox.base_url)
    return Fleet(
        services,
        receive=receive,
        provider=provider,
        settings_overrides={"max_msgs_per_min": 6000},
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
    )


def sent_by(sandbox, chat_id: int, bot_tg: int | None = None) -> int:
    return len(sandbox.sent(chat_id=chat_id, bot_id=bot_tg))


async def runtime_reading(services, fleet: Fleet):  # type: ignore[no-untyped-def]
    ctx = ProbeContext(services, Thresholds(), fleet.snapshot(), None)
    return await RuntimeProbe().check(ctx)


async def pair_reason(services, bot_id: int, chat_id: int) -> str | None:
    async with services.sessions() as session:
        return await session.scalar(
            select(BotChat.disabled_reason).where(
                BotChat.bot_id == bot_id, BotChat.chat_id == chat_id
            )
        )


async def events(services, kind: str) -> list[WorkerEvent]:
    async with services.sessions() as session:
        return list(
            (await session.scalars(select(WorkerEvent).where(WorkerEvent.kind == kind))).all()
        )


async def pair_rows(services, bot_ids: list[int], chat_id: int) -> list[Any]:
    async with services.sessions() as session:
        return (
            await session.execute(
                select(OutboxItem.state, OutboxItem.last_error, Message.status, Message.error_text)
                .join(Message, Message.id == OutboxItem.message_id)
                .where(OutboxItem.bot_id.in_(bot_ids), OutboxItem.chat_id == chat_id)
            )
        ).all()


def assert_nothing_silently_dropped(rows: list[Any], why: str) -> None:
    """Each row of the pair was sent, is still queued, or failed saying why (Telegram's
    refusal for the one that met it, the disable for those held back)."""
    assert rows
    for state, last_error, status, error_text in rows:
        assert state in ("sent", "queued", "claimed", "failed"), state
        if state == "failed":
            assert status == "failed" and why in (last_error or "") and error_text


@pytest.mark.parametrize("fault", ["kicked", "gone"])
async def test_a_kicked_or_gone_pair_is_disabled_and_generates_nothing_more(
    services, sandbox, clock, fault: str
) -> None:
    bots, chats = await two_chats(services, sandbox)
    group0, group1 = chats[0].telegram_id, chats[1].telegram_id
    provider = Recording()
    fleet = start_fleet(services, sandbox, provider, clock)
    # kicked: one bot leaves Group 0; gone: Group 0 itself, for every bot
    hit = [bots[0]] if fault == "kicked" else bots
    words = "kicked from chat Group 0" if fault == "kicked" else "chat Group 0 not found"
    await fleet.start()
    try:
        await until(lambda: sent_by(sandbox, group0, bots[0].telegram_id), "chatter")
        if fault == "kicked":
            sandbox.remove_member(group0, bots[0].telegram_id)
        else:
            sandbox.delete_group(group0)

        async def all_disabled() -> bool:
            return all([await pair_reason(services, b.id, chats[0].id) for b in hit])

        await until(all_disabled, "the pair(s) disabled in the database")
        mark = len(provider.calls)
        names = {f"Fleet{bots.index(b)}" for b in hit}
        # the rest of the fleet goes on: in Group 1 (and, when one bot was kicked, in Group 0)
        going = (group0 if fault == "kicked" else group1, bots[0].telegram_id)
        base = sent_by(sandbox, going[0]), sent_by(sandbox, group1, bots[0].telegram_id)
        await drive(
            clock,
            fleet,
            lambda: (
                sent_by(sandbox, going[0]) >= base[0] + 12
                and sent_by(sandbox, group1, going[1]) >= base[1] + 3
            ),
            0.5,
            "the rest of the fleet chatting on",
        )
        later = provider.calls[mark:]
        assert not [c for c in later if c[0] in names and c[1] == "bist"], later
        assert any(c == ("Fleet0", "fx") for c in later)  # the bot itself works elsewhere

        reading = await runtime_reading(services, fleet)
        assert reading.state is State.WARNING
        assert f"bot @fleet0_bot disabled: {words}" in reading.summary, reading.summary
        reason = await pair_reason(services, bots[0].id, chats[0].id)
        telegram = (
            "Forbidden: bot was kicked from the supergroup chat"
            if fault == "kicked"
            else "Bad Request: chat not found"
        )
        assert reason is not None and words in reason and telegram in reason
        # the refused message failed with Telegram's words, those held back with the disable
        # (which quotes them too)
        rows = await until(lambda: events(services, "disabled"), "the event row")
        assert any(
            words in (r.detail or "") and r.worker == f"bot-{bots[0].id}/chat-{chats[0].id}"
            for r in rows
        )
    finally:
        await fleet.stop()
    assert_nothing_silently_dropped(
        await pair_rows(services, [b.id for b in hit], chats[0].id), telegram
    )


async def test_an_operator_re_enables_a_pair_and_it_speaks_again(services, sandbox, clock) -> None:
    bots, chats = await two_chats(services, sandbox)
    group0 = chats[0].telegram_id
    fleet = start_fleet(services, sandbox, Recording(), clock)
    await fleet.start()
    try:
        await until(lambda: sent_by(sandbox, group0, bots[0].telegram_id), "chatter")
        sandbox.remove_member(group0, bots[0].telegram_id)
        await until(lambda: pair_reason(services, bots[0].id, chats[0].id), "disabled")
        async with services.sessions() as session:
            row = await session.scalar(select(BotChat).where(BotChat.bot_id == bots[0].id))
        # Group 0 lists no members (every bot talks there): the disable did not change that
        assert row is not None and row.listed is False
        assert sorted(fleet.roster.members[chats[0].id]) == sorted(b.id for b in bots[1:])

        sandbox.add_member(group0, bots[0].telegram_id)
        before = sent_by(sandbox, group0, bots[0].telegram_id)
        assert await fleet.control.enable(bots[0].id, chats[0].id, actor="ayse") is True
        await drive(
            clock,
            fleet,
            lambda: sent_by(sandbox, group0, bots[0].telegram_id) > before,
            0.5,
            "back",
        )
        assert await pair_reason(services, bots[0].id, chats[0].id) is None
        assert (await runtime_reading(services, fleet)).state is State.HEALTHY
        assert [r.detail for r in await events(services, "enabled")] == [
            f"bot {bots[0].id} re-enabled in chat {chats[0].id} by ayse"
        ]
    finally:
        await fleet.stop()
    async with services.sessions() as session:
        assert (await session.scalars(select(BotChat))).all() == []  # back to "every bot"


async def test_a_revoked_token_disables_the_whole_bot(services, sandbox, clock) -> None:
    bots, chats = await two_chats(services, sandbox)
    provider = Recording()
    fleet = start_fleet(services, sandbox, provider, clock, receive="polling")
    await fleet.start()
    try:
        await sandbox.wait_for_poller(bots[0].telegram_id)
        await until(lambda: sandbox.sent(bot_id=bots[0].telegram_id), "chatter")
        sandbox.revoke_token(sandbox.world.bots[bots[0].telegram_id].token)

        async def bot_disabled() -> tuple[bool, str | None] | None:
            async with services.sessions() as session:
                row = (
                    await session.execute(
                        select(Bot.enabled, Bot.disabled_reason).where(Bot.id == bots[0].id)
                    )
                ).one()
            return row if row.disabled_reason else None

        enabled, reason = await until(bot_disabled, "the bot disabled")
        assert enabled is False and "401 Unauthorized" in (reason or "")
        mark = len(provider.calls)
        base = len(sandbox.sent())
        await drive(clock, fleet, lambda: len(sandbox.sent()) >= base + 12, 0.5, "the others")
        assert not [c for c in provider.calls[mark:] if c[0] == "Fleet0"]
        assert f"poll-{bots[0].id}" not in fleet.supervisor.workers  # no more 401 polling
        reading = await runtime_reading(services, fleet)
        assert "bot @fleet0_bot disabled: Telegram refused its token" in reading.summary
    finally:
        await fleet.stop()
    for chat in chats:
        assert_nothing_silently_dropped(await pair_rows(services, [bots[0].id], chat.id), "401")


def _error(cls: type, description: str) -> Any:
    return cls(method=SendMessage(chat_id=1, text="x"), message=description)


@pytest.mark.parametrize(
    ("error", "whole_bot", "words"),
    [
        (
            _error(TelegramForbiddenError, "Forbidden: bot was kicked from the group chat"),
            False,
            "kicked from chat G",
        ),
        (
            _error(TelegramForbiddenError, "Forbidden: the group chat was deleted"),
            False,
            "chat G was deleted",
        ),
        (_error(TelegramBadRequest, "Bad Request: chat not found"), False, "chat G not found"),
        (_error(TelegramUnauthorizedError, "Unauthorized"), True, "401 Unauthorized"),
    ],
)
def test_permanent_refusals_are_recognised(error: Any, whole_bot: bool, words: str) -> None:
    refusal = classify_refusal(error, "G")
    assert refusal is not None and refusal.whole_bot is whole_bot and words in refusal.reason


def test_refusals_that_retrying_or_another_message_fixes_are_not() -> None:
    for error in (
        _error(TelegramBadRequest, "Bad Request: message is too long"),
        TelegramRetryAfter(method=SendMessage(chat_id=1, text="x"), message="x", retry_after=3),
    ):
        assert classify_refusal(error, "G") is None
