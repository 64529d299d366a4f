"""The admin bot: aiogram Dispatcher with one router per capability, long polling by
default, webhook at /telegram/webhook when PIYASA_TELEGRAM_WEBHOOK_URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.filters import Command, Filter
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeChatMember,
    BotCommandScopeDefault,
    CallbackQuery,
    ChatMemberUpdated,
    Message,
)
from aiohttp import web
from sqlalchemy import select

from chatops import announce, dialogs, i18n, menus, pipeline
from chatops.buttons import ButtonTokens
from chatops.commands import load_all
from chatops.commands.registry import Command as CommandSpec
from chatops.commands.registry import Registry, Spec
from chatops.context import Client, Context, Invocation
from chatops.pipeline import Halt
from chatops.telegram import adoption, lifecycle
from chatops.telegram import middlewares as mw
from chatops.telegram.responder import TelegramResponder
from chatops.views import View
from chatops.web.paths import TELEGRAM_WEBHOOK_PATH as WEBHOOK_PATH
from piyasa.admin import admin_chats
from piyasa.admin import audit as audit_log
from piyasa.admin.identity import ROLE_LEVEL
from piyasa.db.models import Identity as IdentityRow
from piyasa.db.models import User
from piyasa.services import Services
from piyasa.tasks import cancel_and_wait, wait_for

log = logging.getLogger(__name__)
STEPUP_CODE_RE = re.compile(r"^\s*\d{3}\s?\d{3}\s*$")
MAX_SCOPED_USERS = 500
MAX_RETRY_AFTER_S = 10


class HonorRetryAfter(BaseRequestMiddleware):
    """aiogram does not throttle: wait out short 429s instead of losing the reply."""

    async def __call__(self, make_request: Any, bot: Bot, method: Any) -> Any:
        for attempt in range(3):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == 2 or exc.retry_after > MAX_RETRY_AFTER_S:
                    raise
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")


class SpecIs(Filter):
    """Matches a button press whose token resolved to this spec."""

    def __init__(self, spec_id: str) -> None:
        self.spec_id = spec_id

    async def __call__(self, event: Any, invocation: Invocation | None = None) -> bool:
        return invocation is not None and invocation.spec_id == self.spec_id


def _spec_handler(spec: Spec):  # type: ignore[no-untyped-def]
    async def handle(event: Any, ctx: Context) -> str:
        view = await pipeline.execute(ctx)
        if view is not None and ctx.responder is not None:
            is_press = isinstance(event, CallbackQuery)
            await ctx.responder.show(view, edit=is_press if view.edit is None else view.edit)
        return "ok"

    handle.__name__ = f"chatops_{spec.id.replace('.', '_')}"
    return handle


def build_routers(registry: Registry) -> list[Router]:
    """One router per capability; each command and action has a handler flagged with its spec."""
    routers = []
    for capability, commands in sorted(registry.capabilities().items()):
        router = Router(name=f"chatops.{capability}")
        for cmd in commands:
            router.message.register(_spec_handler(cmd), Command(cmd.id), flags={mw.FLAG: cmd})
            router.callback_query.register(_spec_handler(cmd), SpecIs(cmd.id), flags={mw.FLAG: cmd})
            for action in cmd.actions.values():
                router.callback_query.register(
                    _spec_handler(action), SpecIs(action.id), flags={mw.FLAG: action}
                )
        routers.append(router)
    return routers


class TelegramSurface:
    def __init__(
        self,
        services: Services,
        registry: Registry | None = None,
        *,
        token: str | None = None,
        api_url: str | None = None,
    ) -> None:
        self.services = services
        self.registry = registry or load_all()
        settings = services.settings
        self.bot = Bot(
            token or settings.admin_bot_token.reveal(),
            session=AiohttpSession(
                api=TelegramAPIServer.from_base(api_url or settings.telegram_api_url)
            ),
            default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
        )
        self.bot.session.middleware(HonorRetryAfter())
        self.bot.session.middleware(lifecycle.FollowMigration(self))
        self.tokens = ButtonTokens(services.cache)
        self.dp = self._build_dispatcher()
        self.username = ""
        self._polling: asyncio.Task[None] | None = None
        self._started = False  # started in polling mode (getMe, webhook deleted)
        self.poll_enabled = True  # piyasa.cluster: only the admin role's holder polls
        self._background: set[asyncio.Task[Any]] = set()
        self.webhook_url = (settings.extra or {}).get("PIYASA_TELEGRAM_WEBHOOK_URL", "")

    # -- settings read live: `piyasa up` may swap them (sandbox) before start -----------
    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.services.settings

    @property
    def admin_chat_ids(self) -> tuple[int, ...]:
        return self.services.settings.admin_chat_ids

    @property
    def webhook_secret(self) -> str:
        key = self.services.settings.secret_key.reveal().encode()
        return hashlib.sha256(b"telegram-webhook:" + key).hexdigest()[:48]

    # -- wiring -----------------------------------------------------------------------
    def _build_dispatcher(self) -> Dispatcher:
        dp = Dispatcher(name="piyasa-admin")
        for observer in (dp.message, dp.callback_query):
            observer.outer_middleware(mw.ChatGate(self))
            observer.outer_middleware(mw.Identity(self))
            observer.outer_middleware(mw.Outcome())
            observer.middleware(mw.Bind())
            observer.middleware(mw.Authorize())
            observer.middleware(mw.StepUp(self))
            observer.middleware(mw.Confirm())
        dp.callback_query.outer_middleware(mw.ButtonResolve(self))
        dp.include_routers(*build_routers(self.registry))
        fallback = Router(name="chatops.fallback")
        fallback.message.register(self._on_unknown_command, F.text.startswith("/"))
        fallback.message.register(self._on_text, F.text)
        fallback.callback_query.register(self._on_unknown_press)
        dp.include_router(fallback)
        dp.my_chat_member.register(self._on_membership)
        return dp

    # -- fallbacks ------------------------------------------------------------------
    async def _on_unknown_command(self, message: Message, ctx: Context) -> Any:
        head, _, args = (message.text or "").partition(" ")
        name, _, mention = head[1:].partition("@")
        if mention and mention.lower() != self.username.lower():
            return UNHANDLED  # addressed to another bot in the admin group
        pipeline.bind(ctx, Invocation(spec_id=name.lower()[:32], args_text=args))
        return None

    async def _on_text(self, message: Message, ctx: Context) -> Any:
        text = message.text or ""
        invocation = None
        if ctx.chat_private and ctx.actor and STEPUP_CODE_RE.match(text):
            if await pipeline.has_pending_step_up(ctx):
                invocation = Invocation(spec_id="stepup", args_text=text)
        if invocation is None:
            # in a group only the owner's reply to the dialog's prompt is an answer
            replied = message.reply_to_message
            invocation = await dialogs.input_invocation_for(
                ctx, text, reply_to=str(replied.message_id) if replied else None
            )
        if invocation is None:
            if not ctx.chat_private:
                return UNHANDLED  # ordinary talk in the admin group
            if ctx.actor is None:
                raise pipeline.refusal(ctx, "refuse.unlinked", "denied_unlinked")
            raise Halt(View.message(ctx.t("hint.commands_only")), "hint")
        view = await pipeline.stages(ctx, invocation)
        spec = ctx.spec
        if spec is not None and spec.secret_args:
            await ctx.responder.delete_trigger()  # type: ignore[union-attr]
        if view is not None and ctx.responder is not None:
            await ctx.responder.show(view)
        return "ok"

    async def _on_unknown_press(
        self, query: CallbackQuery, ctx: Context, invocation: Invocation
    ) -> None:
        pipeline.bind(ctx, invocation)  # raises: the spec no longer exists

    async def _on_membership(self, update: ChatMemberUpdated) -> None:
        """Added to (or promoted in) a group that is not an admin chat: a candidate when
        a Piyasa admin did it, else leave (:mod:`.adoption`)."""
        chat = update.chat
        if chat.type == "private" or chat.id in self.admin_chat_ids:
            return
        await adoption.on_membership(self, update)

    async def _on_admin_chat_adopted(self, chat_id: int) -> None:
        """A group became an admin chat (``admin_chats.adopt``): its command menus."""
        self.resync_menus()

    async def follow_migration(self, old: int, new: int) -> bool:
        """An admin group became a supergroup (service message): see :mod:`.lifecycle`."""
        return await lifecycle.follow(self, old, new, "service message")

    def resync_menus(self) -> None:
        """Set the command menus again, in the background (after the admin chats changed)."""
        task = asyncio.create_task(self._sync_commands_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def leave(self, chat_id: int, *, reason: str) -> None:
        with contextlib.suppress(TelegramAPIError):
            await self.bot.leave_chat(chat_id)
        await audit_log.record(
            self.services,
            actor="system",
            surface="telegram",
            action="chat.leave",
            target=f"chat:{chat_id}",
            result="ok",
            detail=reason,
        )

    # -- step-up resumption -----------------------------------------------------------
    async def resume(self, bot: Bot, client: Client, pending: dict[str, Any]) -> None:
        """Run a request parked for step-up again, from the top (re-authorized)."""
        if not pending.get("invocation"):
            return
        chat_id = int(pending["chat_id"])
        actor = await pipeline.identify(self.services, client)
        ctx = Context(
            services=self.services,
            registry=self.registry,
            surface="telegram",
            client=client,
            actor=actor,
            lang=pipeline.language(self.services, actor, client),
            chat_id=str(chat_id),
            chat_private=bool(pending.get("chat_private")),
        )
        ctx.responder = TelegramResponder(
            bot,
            chat_id,
            user_id=int(client.external_id),
            tokens=self.tokens,
            lang=lambda: ctx.lang,
            chat_private=ctx.chat_private,
            thread_id=pending.get("thread_id"),
        )
        view, _ = await pipeline.run(ctx, Invocation.from_dict(pending["invocation"]))
        if view is not None:
            await ctx.responder.show(view)

    # -- command menus ----------------------------------------------------------------
    def _menu(self, level: int, lang: str) -> list[BotCommand]:
        return [
            BotCommand(command=c.id, description=i18n.t(lang, c.help_key)[:256])
            for c in self.registry.visible(level)
        ]

    async def sync_commands(self) -> None:
        """Menus per language: public ones by default, each linked user's own role in
        their private chat and in the admin chats. (Menus are convenience, not security.)"""
        default_lang = self.settings.lang
        for lang in (None, *i18n.LANGS):
            await self.bot.set_my_commands(
                self._menu(0, lang or default_lang),
                scope=BotCommandScopeDefault(),
                language_code=lang,
            )
        for chat_id in self.admin_chat_ids:
            for lang in (None, *i18n.LANGS):
                await self.bot.set_my_commands(
                    self._menu(1, lang or default_lang),
                    scope=BotCommandScopeChat(chat_id=chat_id),
                    language_code=lang,
                )
        await self._sync_linked(None)

    async def sync_user_menus(self, user_id: int) -> None:
        """Panel user ``user_id``'s menus in every Telegram account linked to them, after
        their link, language, role or lock changed."""
        await self._sync_linked(user_id)

    async def _sync_linked(self, user_id: int | None) -> None:
        stmt = (
            select(IdentityRow.external_id, User.role, User.locked, User.language)
            .join(User, User.id == IdentityRow.user_id)
            .where(IdentityRow.provider == "telegram")
            .limit(MAX_SCOPED_USERS)
        )
        if user_id is not None:
            stmt = stmt.where(User.id == user_id)
        async with self.services.sessions() as session:
            rows = (await session.execute(stmt)).all()
        for row in rows:
            await self.sync_user_commands(int(row.external_id), row.role, row.locked, row.language)

    async def sync_user_commands(
        self, user_id: int, role: str, locked: bool, language: str | None
    ) -> None:
        level = 0 if locked else ROLE_LEVEL.get(role, 0)
        lang = language or self.settings.lang
        menu = self._menu(level, lang)
        try:
            await self.bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id=user_id))
            for chat_id in self.admin_chat_ids:
                await self.bot.set_my_commands(
                    menu, scope=BotCommandScopeChatMember(chat_id=chat_id, user_id=user_id)
                )
        except TelegramAPIError as exc:
            log.info("command menu for a user not set: %s", type(exc).__name__)

    # -- lifecycle --------------------------------------------------------------------
    async def start(self, *, polling: bool | None = None) -> None:
        me = await self.bot.get_me()
        self.username = me.username or ""
        try:  # admin groups upgraded to supergroups earlier: their new ids
            await admin_chats.follow_moves(self.services)
        except Exception as exc:
            log.warning(
                "admin chat moves not read (%s); using the configured ids", type(exc).__name__
            )
        menus.register(self.services, self.sync_user_menus)
        admin_chats.on_adopted(self.services, self._on_admin_chat_adopted)
        announce.register(self.services, "telegram", announce.telegram_poster(self))
        self.resync_menus()
        use_webhook = bool(self.webhook_url) if polling is None else not polling
        if use_webhook:
            await self.bot.set_webhook(
                self.webhook_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=self.webhook_secret,
                allowed_updates=self.dp.resolve_used_update_types(),
            )
            return
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._started = True
        if self.poll_enabled:
            self._start_polling_task()

    def _start_polling_task(self) -> None:
        if self._polling is None:
            self._polling = asyncio.create_task(
                self.dp.start_polling(
                    self.bot, handle_signals=False, close_bot_session=False, polling_timeout=10
                )
            )

    async def set_polling(self, enabled: bool) -> None:
        """Long-poll only while ``enabled``: with several instances, only the one holding
        the admin role polls (Telegram answers 409 to a second getUpdates). Takes effect at
        once if the surface started in polling mode, else when it does."""
        self.poll_enabled = enabled
        if enabled:
            if self._started:
                self._start_polling_task()
            return
        await self._stop_polling_task(wait_s=1.5)

    async def _stop_polling_task(self, wait_s: float) -> None:
        task, self._polling = self._polling, None
        if task is None:
            return
        with contextlib.suppress(RuntimeError):
            await self.dp.stop_polling()
        try:
            await wait_for(asyncio.shield(task), wait_s)
        except (TimeoutError, Exception, asyncio.CancelledError):
            await cancel_and_wait(task)  # the long poll in flight: cancelling closes it

    async def _sync_commands_quietly(self) -> None:
        try:
            await self.sync_commands()
        except Exception as exc:  # menus are a convenience; never stop the bot for them
            log.warning("setting command menus failed: %s", type(exc).__name__)

    def mount_webhook(self, app: web.Application, path: str = WEBHOOK_PATH) -> None:
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler

        SimpleRequestHandler(
            dispatcher=self.dp, bot=self.bot, secret_token=self.webhook_secret
        ).register(app, path=path)

    async def stop(self) -> None:
        menus.unregister(self.services, self.sync_user_menus)
        admin_chats.off_adopted(self.services, self._on_admin_chat_adopted)
        announce.unregister(self.services, "telegram")
        for task in list(self._background):
            task.cancel()
        self._started = False
        if self._polling is not None:
            with contextlib.suppress(RuntimeError):
                await self.dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await wait_for(self._polling, 5)
            self._polling = None
        await self.bot.session.close()


__all__ = ["CommandSpec", "TelegramSurface"]
