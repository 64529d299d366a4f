"""`/limits`: the rate-limit dashboard — use of Telegram's send limits per bot, chat and
pair, 429s and ``retry_after`` seen, headroom, the auto-adjusted ``scale_factor`` with an
Undo of the system's last change, and a live mode like `/health live`.

Data: :func:`piyasa.fleetadmin.limits.report` on the running fleet (``ctx.extras["fleet"]``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from chatops.commands.registry import Arg, command
from chatops.context import Context, MessageRef
from chatops.views import Alert, Button, Table, Text, View
from piyasa.fleetadmin import limits as limits_service
from piyasa.fleetadmin.autoadjust import undo_last_system_change
from piyasa.tasks import cancel_and_wait

log = logging.getLogger(__name__)

TOP = 8
LIVE_INTERVAL_S = 5.0
LIVE_DURATION_S = 120.0


def _fleet(ctx: Context) -> Any:
    fleet = ctx.extras.get("fleet")
    return fleet if fleet is not None and getattr(fleet, "started", False) else None


def _pct(share: float) -> str:
    return f"{round(share * 100)} %"


def _num(x: float) -> str:
    return f"{x:g}" if x == int(x) else f"{x:.2f}".rstrip("0").rstrip(".")


def _event_line(ctx: Context, e: dict[str, Any]) -> str:
    at = str(e.get("at", ""))[11:16]
    kind = str(e.get("kind"))
    if kind == "limit_warning":
        who = {
            "pair": ctx.t("limits.who.pair", bot=e.get("bot_id"), chat=e.get("chat_id")),
            "bot": ctx.t("limits.who.bot", bot=e.get("bot_id")),
        }.get(str(e.get("subject")), ctx.t("limits.who.fleet"))
        text = ctx.t("limits.event.limit_warning", who=who, use=e.get("use"), min=e.get("minutes"))
    else:
        text = ctx.t(
            f"limits.event.{kind}",
            old=e.get("old"),
            new=e.get("new"),
            to=e.get("to"),
            n=e.get("n429"),
        )
    return f"{at} {text}"


def limits_view(ctx: Context, rep: limits_service.LimitsReport, *, live: str = "") -> View:
    """The dashboard; ``live`` is "" (a still view), "on" or "ended"."""
    t = ctx.t
    lim = rep.limits
    f = rep.fleet
    blocks: list[Any] = [
        Text(
            t(
                "limits.telegram",
                chat=_num(lim["chat_rate"]),
                burst=int(lim["chat_burst"]),
                group=int(lim["group_max"]),
                bot=int(lim["bot_max"]),
            ),
            style="italic",
        ),
        Text(
            t(
                "limits.fleet",
                min=f.last_min,
                hour=f.last_hour,
                rate=_num(f.per_s_now),
                cap=_num(f.limit_per_s or 0),
                n429m=f.n429_min,
                n429h=f.n429_hour,
            )
            + (
                " " + t("limits.retry_after", s=_num(f.last_retry_after))
                if f.last_retry_after
                else ""
            )
        ),
    ]
    if rep.operator_scale is not None:
        blocks.append(
            Alert(
                "warning",
                t(
                    "limits.scale.lowered",
                    scale=_num(rep.scale_factor),
                    op=_num(rep.operator_scale),
                    floor=_num(rep.min_scale),
                ),
            )
        )
    else:
        key = "limits.scale.auto" if rep.autoadjust_enabled else "limits.scale.manual"
        blocks.append(Text(t(key, scale=_num(rep.scale_factor), floor=_num(rep.min_scale))))
    if rep.hot:
        blocks.append(Alert("warning", t("limits.hot", n=len(rep.hot))))
    if rep.pairs:
        blocks.append(
            Table(
                [
                    t("limits.col.bot"),
                    t("limits.col.chat"),
                    t("limits.col.bucket"),
                    t("limits.col.min"),
                    t("limits.col.hour"),
                    t("limits.col.n429"),
                    t("limits.col.headroom"),
                ],
                [
                    (
                        p.bot_name,
                        p.chat_title,
                        _pct(p.bucket_fill),
                        f"{p.last_min}/{_num(p.limit_per_min)}",
                        str(p.last_hour),
                        str(p.n429_hour)
                        + (f" ({_num(p.last_retry_after)} s)" if p.last_retry_after else ""),
                        _num(p.headroom_per_min),
                    )
                    for p in rep.pairs[:TOP]
                ],
            )
        )
    else:
        blocks.append(Text(t("limits.empty")))
    if rep.bots:
        blocks.append(
            Table(
                [
                    t("limits.col.bot"),
                    t("limits.col.min"),
                    t("limits.col.hour"),
                    t("limits.col.rate"),
                    t("limits.col.n429"),
                ],
                [
                    (
                        b.name,
                        str(b.last_min),
                        str(b.last_hour),
                        f"{_num(round(b.per_s_now, 2))}/{_num(b.limit_per_s or 0)}",
                        str(b.n429_hour),
                    )
                    for b in rep.bots[:TOP]
                ],
            )
        )
    if rep.events:
        blocks.append(Text("\n".join(_event_line(ctx, e) for e in rep.events[-5:]), style="italic"))
    if live == "on":
        blocks.append(Text(t("limits.live.on"), style="italic"))
    elif live == "ended":
        blocks.append(Text(t("limits.live.ended"), style="italic"))
    view = View(title=t("limits.title"), blocks=blocks)
    if live == "on":
        view.row(Button(t("limits.live.stop"), "limits.stop_live"))
    else:
        view.row(
            Button(t("limits.btn.refresh"), "limits.refresh"),
            Button(t("limits.live.start"), "limits.live"),
        )
    if rep.operator_scale is not None:
        view.row(Button(t("limits.btn.undo"), "limits.undo"))
    return view


def _not_running(ctx: Context) -> View:
    return View(blocks=[Alert("warning", ctx.t("limits.not_running"))])


@command("limits", role="viewer", order=62, args=(Arg("mode", choices=("live",)),))
async def limits(ctx: Context) -> View | None:
    fleet = _fleet(ctx)
    if fleet is None:
        return _not_running(ctx)
    if ctx.args.get("mode", "").lower() == "live":
        return await _start_live(ctx, fleet)
    return limits_view(ctx, await limits_service.report(fleet))


@limits.action("refresh")
async def limits_refresh(ctx: Context) -> View:
    fleet = _fleet(ctx)
    if fleet is None:
        return _not_running(ctx)
    return limits_view(ctx, await limits_service.report(fleet))


@limits.action("undo", role="operator")
async def limits_undo(ctx: Context) -> View:
    fleet = _fleet(ctx)
    if fleet is None:
        return _not_running(ctx)
    change = await undo_last_system_change(
        ctx.services, fleet.settings_store, actor=ctx.actor_label
    )
    view = limits_view(ctx, await limits_service.report(fleet))
    if change is None:
        view.blocks.insert(0, Alert("info", ctx.t("limits.undo.nothing")))
    else:
        ctx.audit_params.update(old=change["old"], new=change["new"])
        view.blocks.insert(
            0, Alert("success", ctx.t("limits.undo.done", old=change["old"], new=change["new"]))
        )
    return view


# -- live mode ------------------------------------------------------------------------------


@dataclass
class LiveLimits:
    """Live `/limits` messages, one per chat (each edit counts against that chat's limits),
    re-rendered every ``interval_s`` for ``duration_s`` and edited only when changed."""

    interval_s: float = LIVE_INTERVAL_S
    duration_s: float = LIVE_DURATION_S
    tasks: dict[tuple[str, str], tuple[MessageRef, asyncio.Task[None]]] = field(
        default_factory=dict
    )
    edits: int = 0

    async def start(self, ctx: Context, fleet: Any, ref: MessageRef) -> None:
        await self.stop(ref.surface, ref.chat)
        task = asyncio.create_task(self._run(ctx, fleet, ref), name="limits-live")
        self.tasks[(ref.surface, ref.chat)] = (ref, task)

    async def stop(self, surface: str, chat: str) -> MessageRef | None:
        entry = self.tasks.pop((surface, chat), None)
        if entry is None:
            return None
        ref, task = entry
        if task is not asyncio.current_task():
            await cancel_and_wait(task)
        return ref

    async def _run(self, ctx: Context, fleet: Any, ref: MessageRef) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.duration_s
        last = ""
        try:
            while (remaining := end - loop.time()) > 0:
                await asyncio.sleep(min(self.interval_s, remaining))
                view = limits_view(ctx, await limits_service.report(fleet), live="on")
                text = view.plain_text()
                if text != last and loop.time() < end:
                    await ctx.edit(ref, view)
                    self.edits += 1
                    last = text
            await ctx.edit(ref, limits_view(ctx, await limits_service.report(fleet), live="ended"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the chat went away: the live view just ends
            log.info("live limits view ended early: %s", type(exc).__name__)
        finally:
            entry = self.tasks.get((ref.surface, ref.chat))
            if entry is not None and entry[1] is asyncio.current_task():
                del self.tasks[(ref.surface, ref.chat)]


def _live(ctx: Context) -> LiveLimits:
    live = ctx.extras.get("limits.live")
    if live is None:
        live = ctx.extras["limits.live"] = LiveLimits()
    return live


async def _start_live(ctx: Context, fleet: Any) -> View | None:
    view = limits_view(ctx, await limits_service.report(fleet), live="on")
    pressed = getattr(ctx.responder, "pressed_message_id", None)
    if ctx.invocation is not None and ctx.invocation.is_press and pressed is not None:
        ref = MessageRef(ctx.surface, ctx.chat_id, str(pressed))
        await ctx.edit(ref, view)
    else:
        ref = await ctx.send(view)
        if ref is None:
            return View(blocks=[Alert("error", ctx.t("error.internal"))])
    await _live(ctx).start(ctx, fleet, ref)
    if ctx.surface == "slack" and not (ctx.invocation and ctx.invocation.is_press):
        return View(blocks=[Text(ctx.t("limits.live.posted"))], edit=False)
    return None


@limits.action("live")
async def limits_live(ctx: Context) -> View | None:
    fleet = _fleet(ctx)
    if fleet is None:
        return _not_running(ctx)
    return await _start_live(ctx, fleet)


@limits.action("stop_live")
async def limits_stop_live(ctx: Context) -> View:
    fleet = _fleet(ctx)
    if fleet is None:
        return _not_running(ctx)
    await _live(ctx).stop(ctx.surface, ctx.chat_id)
    return limits_view(ctx, await limits_service.report(fleet), live="ended")


__all__ = ["LiveLimits", "limits_view"]
