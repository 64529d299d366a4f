"""Live `/health`: a message that follows the snapshot for a while, edited only on change."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chatops.commands.health.views import _health, _keep, overview, signature
from chatops.commands.health.words import LIVE_DURATION_S, LIVE_INTERVAL_S
from chatops.context import Context, MessageRef
from chatops.views import Alert, Text, View
from piyasa.tasks import cancel_and_wait

log = logging.getLogger(__name__)


# -- live mode ------------------------------------------------------------------------------


@dataclass
class LiveSession:
    ctx: Context
    ref: MessageRef
    until: datetime
    task: asyncio.Task[None] | None = None
    ticks: int = 0
    edits: int = 0


@dataclass
class LiveViews:
    """Live `/health` messages: looked at every ``interval_s`` for ``duration_s`` and edited
    only when something shown changed, so an edit never repeats the message (Telegram's
    "message is not modified"). One per chat: each edit counts against Telegram's per-chat
    limits (20/min in a group), so a second live view in a chat ends the first."""

    interval_s: float = LIVE_INTERVAL_S
    duration_s: float = LIVE_DURATION_S
    sessions: dict[tuple[str, str], LiveSession] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, ctx: Context, ref: MessageRef, until: datetime) -> LiveSession:
        old = self.sessions.get((ref.surface, ref.chat))
        if old is not None:
            await self._cancel(old, final=old.ref != ref)
        session = LiveSession(ctx, ref, until)
        self.sessions[(ref.surface, ref.chat)] = session
        session.task = asyncio.create_task(self._run(session), name="health-live")
        await self._notify()
        return session

    async def wait_for_session(self) -> LiveSession:
        """The newest running live view, once there is one."""
        async with self.changed:
            await self.changed.wait_for(lambda: bool(self.sessions))
        return list(self.sessions.values())[-1]

    def get(self, ref: MessageRef | None) -> LiveSession | None:
        if ref is None:
            return None
        session = self.sessions.get((ref.surface, ref.chat))
        return session if session is not None and session.ref == ref else None

    async def stop(self, ref: MessageRef | None) -> bool:
        """End the live view on ``ref`` (the caller is about to replace that message)."""
        session = self.get(ref)
        if session is None:
            return False
        await self._cancel(session, final=False)
        return True

    async def stop_all(self) -> None:
        for session in list(self.sessions.values()):
            await self._cancel(session, final=False)

    async def _cancel(self, session: LiveSession, *, final: bool) -> None:
        self.sessions.pop((session.ref.surface, session.ref.chat), None)
        task = session.task
        if task is not None and task is not asyncio.current_task():
            await cancel_and_wait(task)
        if final:
            await self._final_edit(session)

    async def _final_edit(self, session: LiveSession) -> None:
        hs = _health(session.ctx)
        if hs is None:
            return
        try:
            await session.ctx.edit(
                session.ref, overview(session.ctx, hs.snapshot(), live_ended=True)
            )
            session.edits += 1
        except Exception as exc:  # the chat went away, the bot stopped: the view just ends
            log.info("live health view not closed: %s", type(exc).__name__)

    async def wait_ticks(self, session: LiveSession, n: int) -> None:
        """Wait until ``session`` has looked at the snapshot ``n`` times (or ended)."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: session.ticks >= n or session.task is None or session.task.done()
            )

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _run(self, session: LiveSession) -> None:
        ctx = session.ctx
        hs = _health(ctx)
        loop = asyncio.get_running_loop()
        end = loop.time() + self.duration_s
        last = signature(hs.snapshot())
        try:
            while (remaining := end - loop.time()) > 0:
                await asyncio.sleep(min(self.interval_s, remaining))
                snap = hs.snapshot()
                sig = signature(snap)
                if sig != last and loop.time() < end:
                    await ctx.edit(session.ref, overview(ctx, snap, live_until=session.until))
                    session.edits += 1
                    last = sig
                session.ticks += 1
                await self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the chat went away, the bot stopped: the view just ends
            log.info("live health view ended early: %s", type(exc).__name__)
            return
        finally:
            if self.sessions.get((session.ref.surface, session.ref.chat)) is session:
                del self.sessions[(session.ref.surface, session.ref.chat)]
            await self._notify()
        await self._final_edit(session)


def _live(ctx: Context) -> LiveViews:
    views = ctx.extras.get("health.live")
    if views is None:
        views = ctx.extras["health.live"] = LiveViews()
    return views


def _pressed_ref(ctx: Context) -> MessageRef | None:
    pressed = getattr(ctx.responder, "pressed_message_id", None)
    if ctx.invocation is None or not ctx.invocation.is_press or pressed is None:
        return None
    return MessageRef(ctx.surface, ctx.chat_id, str(pressed))


async def _start_live(ctx: Context) -> View | None:
    hs = _health(ctx)
    live = _live(ctx)
    until = datetime.now(UTC) + timedelta(seconds=live.duration_s)
    view = overview(ctx, hs.snapshot(), live_until=until)
    ref = _pressed_ref(ctx) if not _keep(ctx) else None
    if ref is not None:  # Telegram: the pressed message itself goes live
        await live.start(ctx, ref, until)
        await ctx.edit(ref, view)
        return None
    ref = await ctx.send(view)  # a new message (Slack: a channel message it can update)
    if ref is None:
        return View(blocks=[Alert("error", ctx.t("error.internal"))])
    await live.start(ctx, ref, until)
    if ctx.surface == "slack":
        return View(blocks=[Text(ctx.t("health.live.posted"))], edit=False)
    return None
