"""The pipeline as an aiogram onion.

Outer (every update, before any filter): ChatGate -> Identity -> Outcome -> ButtonResolve.
Inner (only once a handler matched; its spec comes from the handler's ``chatops`` flag):
Bind -> Authorize -> StepUp -> Confirm -> handler. Each layer calls one stage function of
:mod:`chatops.pipeline`; Slack chains the same functions, so the rules cannot diverge.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.dispatcher.flags import get_flag
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, Message, TelegramObject

from chatops import context_help, i18n, pipeline
from chatops.context import Client, Context, Invocation
from chatops.pipeline import Halt
from chatops.telegram import adoption
from chatops.telegram.responder import TelegramResponder
from chatops.views import Alert, View
from piyasa.admin import audit as audit_log

if TYPE_CHECKING:
    from chatops.telegram.surface import TelegramSurface

log = logging.getLogger(__name__)
Next = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
FLAG = "chatops"


def _chat_and_user(event: TelegramObject) -> tuple[Any, Any]:
    if isinstance(event, Message):
        return event.chat, event.from_user
    if isinstance(event, CallbackQuery):
        return (event.message.chat if event.message else None), event.from_user
    return None, None


def topic_of(event: TelegramObject) -> int | None:
    """The forum topic an update came from, or None (General, or not a forum). Only a
    topic message names its topic: ``message_thread_id`` without ``is_topic_message`` is a
    reply thread of an ordinary supergroup, where answers need no thread (Bot API, Message)."""
    msg = event.message if isinstance(event, CallbackQuery) else event
    if isinstance(msg, Message) and msg.is_topic_message:
        return msg.message_thread_id
    return None


def migration_of(event: TelegramObject) -> tuple[int, int] | None:
    """(old id, new id) when ``event`` is the service message of a group upgraded to a
    supergroup: ``migrate_to_chat_id`` in the old chat, ``migrate_from_chat_id`` in the
    new one (Bot API, Message)."""
    if not isinstance(event, Message):
        return None
    if event.migrate_to_chat_id:
        return event.chat.id, event.migrate_to_chat_id
    if event.migrate_from_chat_id:
        return event.migrate_from_chat_id, event.chat.id
    return None


class ChatGate(BaseMiddleware):
    """Only admin chats and private chats; leave other groups; refuse forwards and
    messages sent on behalf of a chat (anonymous admins, channels). An admin group
    upgraded to a supergroup is followed to its new id, not left; a group an admin is
    adopting as an admin chat is ignored while it is a candidate (:mod:`.adoption`)."""

    def __init__(self, surface: TelegramSurface) -> None:
        self.surface = surface

    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat, user = _chat_and_user(event)
        if chat is not None and (moved := migration_of(event)):
            if not await self.surface.follow_migration(*moved) and (
                moved[1] not in self.surface.admin_chat_ids
            ):
                await self.surface.leave(moved[1], reason="not an admin chat")
            return UNHANDLED
        if chat is None or user is None:
            return UNHANDLED
        if chat.type != "private" and chat.id not in self.surface.admin_chat_ids:
            if isinstance(event, CallbackQuery):
                await event.answer()
            if not await adoption.holds(self.surface, event, chat.id):
                await self.surface.leave(chat.id, reason="not an admin chat")
            return UNHANDLED
        if isinstance(event, Message) and (event.forward_origin or event.sender_chat):
            text = event.text or event.caption or ""
            if chat.type == "private" or text.startswith("/"):
                lang = i18n.choose_lang(None, user.language_code, self.surface.settings.lang)
                await event.answer(
                    render_plain(i18n.t(lang, "refuse.forwarded")),
                    reply_to_message_id=event.message_id,
                )
                await audit_log.record(
                    self.surface.services,
                    actor=f"telegram:{user.id}",
                    surface="telegram",
                    action="message",
                    target=f"chat:{chat.id}",
                    params={
                        "forwarded": bool(event.forward_origin),
                        "sender_chat": bool(event.sender_chat),
                    },
                    result="refused_forwarded",
                )
            return UNHANDLED
        if user.is_bot:
            return UNHANDLED
        return await handler(event, data)


def render_plain(text: str) -> str:
    from chatops.telegram.render import esc

    return esc(text)


class Identity(BaseMiddleware):
    """Resolve the numeric Telegram id to a Piyasa user, pick the language, build ctx."""

    def __init__(self, surface: TelegramSurface) -> None:
        self.surface = surface

    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat, user = _chat_and_user(event)
        services = self.surface.services
        client = Client(
            "telegram", str(user.id), display_name=user.full_name, language=user.language_code
        )
        actor = await pipeline.identify(services, client)
        ctx = Context(
            services=services,
            registry=self.surface.registry,
            surface="telegram",
            client=client,
            actor=actor,
            lang=pipeline.language(services, actor, client),
            chat_id=str(chat.id),
            chat_private=chat.type == "private",
        )
        ctx.responder = TelegramResponder(
            data["bot"],
            chat.id,
            user_id=user.id,
            tokens=self.surface.tokens,
            lang=lambda: ctx.lang,
            chat_private=ctx.chat_private,
            trigger_message_id=event.message_id if isinstance(event, Message) else None,
            pressed_message_id=(
                event.message.message_id
                if isinstance(event, CallbackQuery) and event.message
                else None
            ),
            callback=event if isinstance(event, CallbackQuery) else None,
            resumer=lambda pending: self.surface.resume(data["bot"], client, pending),
            user_name=user.full_name,
            thread_id=topic_of(event),
        )
        data["ctx"] = ctx
        return await handler(event, data)


async def show_halt(ctx: Context, halt: Halt) -> None:
    responder: TelegramResponder = ctx.responder  # type: ignore[assignment]
    is_press = responder.callback is not None
    # a refused press answers with a toast (no buttons there): Learn more alone is dropped
    if not is_press or not context_help.only_learn(halt.view):
        await responder.show(halt.view, edit=is_press and bool(halt.view.edit))
        return
    # A refused press changes nothing on screen: the answer is a toast/alert only.
    await responder.answer(halt.view.plain_text(), alert=True)


class Outcome(BaseMiddleware):
    """Render whatever stopped the request, and write the one audit row for it."""

    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: Context = data["ctx"]
        responder: TelegramResponder = ctx.responder  # type: ignore[assignment]
        try:
            result = await handler(event, data)
        except Halt as halt:
            try:
                await show_halt(ctx, halt)
            finally:
                if halt.result != "hint":
                    await pipeline.audit(ctx, halt.result, halt.detail)
            return None
        except Exception as exc:
            log.exception("telegram request failed")
            halt = pipeline.failure(ctx, exc)
            try:
                await show_halt(ctx, halt)
            except Exception:
                log.warning("could not tell the user about the failure")
            await pipeline.audit(ctx, halt.result, halt.detail)
            return None
        if result is not UNHANDLED and ctx.spec is not None:
            await pipeline.audit(ctx, "ok")
        await responder.answer()
        return result


class ButtonResolve(BaseMiddleware):
    """callback_data is only a token: look it up, bound to this user and chat."""

    def __init__(self, surface: TelegramSurface) -> None:
        self.surface = surface

    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, CallbackQuery)
        ctx: Context = data["ctx"]
        press = await self.surface.tokens.resolve(
            event.data or "", surface="telegram", user=ctx.client.external_id, chat=ctx.chat_id
        )
        if press is None:
            ctx.invocation = Invocation(spec_id="button", is_press=True)
            raise Halt(View(blocks=[Alert("error", ctx.t("refuse.button"))]), "refused_button")
        data["invocation"] = Invocation(
            spec_id=press.spec_id,
            args_text=press.args_text,
            params=press.params,
            confirmed=press.confirmed,
            is_press=True,
        )
        return await handler(event, data)


# -- inner layers: only run when a handler with a ``chatops`` flag matched ---------------


class Bind(BaseMiddleware):
    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        spec = get_flag(data, FLAG)
        if spec is None:
            return await handler(event, data)
        ctx: Context = data["ctx"]
        invocation = data.get("invocation")
        if invocation is None:
            command: CommandObject | None = data.get("command")
            invocation = Invocation(
                spec_id=spec.id, args_text=(command.args or "") if command else ""
            )
        pipeline.bind(ctx, invocation)
        if (
            ctx.spec is not None
            and ctx.spec.secret_args
            and ctx.args
            and isinstance(event, Message)
        ):
            await ctx.responder.delete_trigger()  # type: ignore[union-attr]
        return await handler(event, data)


class Authorize(BaseMiddleware):
    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        if get_flag(data, FLAG) is not None:
            ctx: Context = data["ctx"]
            pipeline.check_parts(ctx)
            await pipeline.authorize(ctx)
            await pipeline.check_exposed(ctx)
            pipeline.check_private(ctx)
            pipeline.check_args(ctx)
        return await handler(event, data)


class StepUp(BaseMiddleware):
    """Asked in a group, the code is asked for in private. Telegram refuses that (403)
    until the user has started the bot, and then the group must not hear "I have sent
    you a private message": it hears how to open the chat, and nothing stays parked."""

    def __init__(self, surface: TelegramSurface) -> None:
        self.surface = surface

    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        if get_flag(data, FLAG) is not None:
            ctx: Context = data["ctx"]
            try:
                await pipeline.step_up(ctx)
            except Halt as halt:
                if halt.result == "stepup_required" and not ctx.chat_private:
                    dm = View(blocks=[Alert("warning", ctx.t("stepup.dm"))])
                    if await ctx.send_private(dm) is None:
                        await pipeline.drop_step_up(ctx)
                        refused = pipeline.refusal(
                            ctx,
                            "stepup.no_private_chat",
                            "refused_no_private_chat",
                            bot=self.surface.username,
                        )
                        refused.detail = "private message refused: the user has not started the bot"
                        raise refused from halt
                raise
        return await handler(event, data)


class Confirm(BaseMiddleware):
    async def __call__(self, handler: Next, event: TelegramObject, data: dict[str, Any]) -> Any:
        if get_flag(data, FLAG) is not None:
            await pipeline.confirm(data["ctx"])
        return await handler(event, data)
