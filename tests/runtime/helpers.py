"""Building blocks for runtime tests: a sandbox world, seeded DB rows, condition waits
(``until`` is tests.waiting's; ``drive`` also moves the test's clock)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from piyasa.crypto import fingerprint
from piyasa.db.models import Bot, Chat
from piyasa.db.runtime_models import BotChat, OutboxItem
from piyasa.sandbox.telegram import SandboxClock
from piyasa.services import Services
from tests.waiting import until


class FleetClock(SandboxClock):
    """One timeline for the sandbox's limits and the fleet's clocks: real time plus jumps.

    Time flows as usual (the fleet's loops keep running), and a test that would wait for a
    ``retry_after``, a breaker's cool-down or a bucket's refill moves the clock forward
    instead. The sandbox reads ``now()``; the fleet gets the instance as its monotonic
    ``clock`` and ``wall`` as its UTC clock, so limits on both sides agree.
    """

    def __init__(self) -> None:
        super().__init__(time.time())
        self.offset = 0.0
        self._held: float | None = None

    def now(self) -> float:
        return (time.time() if self._held is None else self._held) + self.offset

    def hold(self) -> None:
        """From now on only :meth:`advance` moves this clock, not real time.

        For a test that reads what is left of a cool-down or a ``retry_after``: with real
        time flowing, the seconds a slow machine spends between the event and the check
        would count against it (a stopwatch in disguise). Move it with ``drive``.
        """
        if self._held is None:
            self._held = time.time()

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.offset += seconds
        return self.now()

    def __call__(self) -> float:
        return self.now()

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


def token_for(n: int) -> str:
    return f"{8000000000 + n}:TEST-fleet-bot-{n:04d}-token-do-not-use-x"


async def seed(
    services: Services,
    sandbox: Any,
    bots: int,
    chats: int,
    *,
    per_chat: dict[int, list[int]] | None = None,
    persona: dict[str, Any] | None = None,
    hourly_limit: int = 100_000,
    active_hours: str = "00:00-24:00",
    topics: list[str] | None = None,
    timezones: list[str] | None = None,
) -> tuple[list[Bot], list[Chat]]:
    """Create bots and groups in the sandbox and the database (every bot in every chat)."""
    bot_rows, chat_rows = [], []
    async with services.sessions() as session, session.begin():
        for i in range(bots):
            tok = token_for(i)
            acct = sandbox.add_bot(token=tok, username=f"fleet{i}_bot", first_name=f"Fleet {i}")
            row = Bot(
                telegram_id=acct.id,
                token_encrypted=services.box.encrypt(tok),
                token_fingerprint=fingerprint(tok),
                username=f"fleet{i}_bot",
                display_name=f"Fleet {i}",
                persona={
                    "name": f"Fleet{i}",
                    "style": "teknik",
                    "language": "tr",
                    **(persona or {}),
                },
                hourly_limit=hourly_limit,
                active_hours=active_hours,
                timezone=(timezones or ["Europe/Istanbul"])[i % len(timezones or ["x"])],
            )
            session.add(row)
            bot_rows.append(row)
        await session.flush()
        for j in range(chats):
            cid = -1005000000000 - j
            members = [b.telegram_id for b in bot_rows]
            if per_chat is not None:
                members = [bot_rows[i].telegram_id for i in per_chat.get(j, [])]
            sandbox.add_group(chat_id=cid, title=f"Group {j}", members=members)
            row = Chat(telegram_id=cid, title=f"Group {j}", topics=topics or ["bist", "fx"])
            session.add(row)
            chat_rows.append(row)
        await session.flush()
        if per_chat is not None:
            for j, idxs in per_chat.items():
                for i in idxs:
                    session.add(BotChat(bot_id=bot_rows[i].id, chat_id=chat_rows[j].id))
    return bot_rows, chat_rows


def with_sandbox(services: Services, url: str, redis_url: str = "") -> Services:
    services.settings = dataclasses.replace(
        services.settings, telegram_api_url=url, redis_url=redis_url
    )
    return services


async def drive(
    clock: FleetClock,
    fleet: Any,
    check: Callable[[], Awaitable[Any] | Any],
    step_s: float = 0.5,
    what: str = "condition",
) -> Any:
    """Move ``clock`` forward ``step_s`` at a time until ``check`` holds.

    The simulated time is ``step_s`` per round; the real time is bounded only by HANG_S.
    Each round lets the fleet catch up with the new time before moving again: the planner
    looks (woken at once), what it decided is generated and queued, the gate looks at its
    queues and its sends finish (``Fleet.pipeline_idle``). So a slow (loaded) machine sees
    the same timeline as a fast one: time never runs ahead of a fleet that has not caught
    up with it, and a message takes the same simulated time to go out on both.
    """
    loop = asyncio.get_running_loop()

    async def settle(done: Callable[[], bool]) -> None:
        # A worker being restarted never settles: move on after a while, HANG_S rules.
        patience = loop.time() + 5.0
        while not done() and loop.time() < patience:  # noqa: ASYNC110 - counters
            await asyncio.sleep(0.002)

    async def step() -> Any:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if not value:
            clock.advance(step_s)
            idle = getattr(fleet, "pipeline_idle", None) or (lambda: True)
            if getattr(fleet, "planner", None) is not None:
                start = fleet.planner_passes
                fleet.wake_planner()
                await settle(lambda: fleet.planner_passes > start)
                await settle(idle)
            gate = fleet.gate
            if gate is not None:
                start = gate.passes
                gate.notify()
                await settle(lambda: gate.passes > start)
                await settle(idle)
        return value

    return await until(step, f"{what} (the clock moving {step_s} s a round)")


async def gate_passes(fleet: Any, n: int = 3) -> None:
    """Wait until the gate has looked at its queues ``n`` more times (nothing moves time)."""
    start = fleet.gate.passes

    def done() -> bool:
        fleet.gate.notify()
        return fleet.gate.passes >= start + n

    await until(done, f"{n} gate passes")


async def outbox_states(services: Services) -> dict[str, int]:
    async with services.sessions() as session:
        rows = (
            await session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state))
        ).all()
    return {s: int(n) for s, n in rows}


def namespace() -> str:
    return f"test:gate:{uuid.uuid4().hex[:8]}:"
