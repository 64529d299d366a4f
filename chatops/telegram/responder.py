"""Shows Views in a Telegram chat: send, edit in place, private follow-ups, files, and
the ForceReply prompt of a dialog step waiting for a typed answer in a group.

In a forum supergroup every answer goes to the topic the request came from: a send
without ``message_thread_id`` lands in General (Bot API, sendMessage: "Unique identifier
for the target message thread (topic) of the forum"), so each send to the request's chat
names ``thread_id``. Edits stay where the edited message is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    ForceReply,
    InlineKeyboardMarkup,
    ReplyParameters,
)

from chatops.buttons import ButtonTokens
from chatops.context import MessageRef
from chatops.telegram import render
from chatops.views import Ask, TokenIssuer, View

PLACEHOLDER_MAX = 64  # ForceReply.input_field_placeholder: 1-64 characters (Bot API)

log = logging.getLogger(__name__)


class TelegramResponder:
    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        user_id: int,
        tokens: ButtonTokens,
        lang: Callable[[], str],
        chat_private: bool,
        trigger_message_id: int | None = None,
        pressed_message_id: int | None = None,
        callback: CallbackQuery | None = None,
        resumer: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        user_name: str = "",
        thread_id: int | None = None,
    ) -> None:
        """``thread_id``: the forum topic of the request (None: no topic, or General)."""
        self.bot = bot
        self.chat_id = chat_id
        self.thread_id = thread_id
        self.user_id = user_id
        self.tokens = tokens
        self._lang = lang
        self.chat_private = chat_private
        self.trigger_message_id = trigger_message_id
        self.pressed_message_id = pressed_message_id
        self.callback = callback
        self.answered = False
        self._resumer = resumer
        self.secret_visible = False  # a message holding a secret could not be deleted
        self.user_name = user_name

    def _issuer(self, chat_id: int) -> TokenIssuer:
        return self.tokens.issuer(surface="telegram", user=str(self.user_id), chat=str(chat_id))

    async def answer(self, text: str = "", *, alert: bool = False) -> None:
        """Stop the button's spinner (once); ``text`` becomes a toast (max 200)."""
        if self.callback is None or self.answered:
            return
        self.answered = True
        with contextlib.suppress(TelegramBadRequest):
            await self.callback.answer(text[:200] if text else None, show_alert=alert)

    async def show(self, view: View, *, edit: bool = False) -> MessageRef | None:
        if view.private and not self.chat_private:
            ref = await self.send_private(view)
            from chatops import i18n

            if ref is None:  # never claim a private message that Telegram refused
                me = await self.bot.me()
                text = i18n.t(self._lang(), "render.private_refused", bot=me.username or "")
            else:
                text = i18n.t(self._lang(), "render.sent_private")
            await self.send(View.message(text))
            return ref
        ref = None
        if edit and self.pressed_message_id and not view.files and not view.images:
            rendered = await render.render(view, self._lang(), self._issuer(self.chat_id))
            if len(rendered.texts) == 1:
                await self.answer(view.notice)
                ref = MessageRef("telegram", str(self.chat_id), str(self.pressed_message_id))
                ref = await self._edit_rendered(ref, rendered.texts[0], rendered.markup)
        if ref is None:
            await self.answer(view.notice)
            ref = await self.send(view)
        if view.ask is not None and not self.chat_private:
            await self.prompt(view.ask)
        return ref

    async def prompt(self, ask: Ask) -> MessageRef:
        """In a group, ask for the step's answer with a selective ForceReply: it replies
        to the owner's message when that is still there, else mentions the owner (Bot API
        ForceReply ``selective``: "users that are @mentioned in the text" or "the sender
        of the original message"). Only a reply to this message answers the step."""
        from chatops import i18n

        name = render.esc(self.user_name or str(self.user_id))
        mention = f'<a href="tg://user?id={self.user_id}">{name}</a>'
        sentence = render.esc(i18n.t(self._lang(), "dialog.reply_prompt", name="\x00"))
        text = "✏️ " + sentence.replace("\x00", mention, 1)
        placeholder = i18n.t(self._lang(), "dialog.placeholder")[:PLACEHOLDER_MAX]
        reply = None
        if self.trigger_message_id is not None:
            reply = ReplyParameters(
                message_id=self.trigger_message_id, allow_sending_without_reply=True
            )
        msg = await self.bot.send_message(
            self.chat_id,
            text,
            reply_markup=ForceReply(
                force_reply=True, selective=True, input_field_placeholder=placeholder
            ),
            reply_parameters=reply,
            message_thread_id=self.thread_id,  # in a forum: the topic the dialog runs in
        )
        if ask.sent is not None:
            await ask.sent(str(msg.message_id))
        return MessageRef("telegram", str(self.chat_id), str(msg.message_id))

    async def send(self, view: View, chat_id: int | None = None) -> MessageRef | None:
        target = self.chat_id if chat_id is None else chat_id
        thread = self.thread_id if target == self.chat_id else None
        rendered = await render.render(view, self._lang(), self._issuer(target))
        last = None
        for i, text in enumerate(rendered.texts):
            markup = rendered.markup if i == len(rendered.texts) - 1 else None
            last = await self.bot.send_message(
                target,
                text,
                message_thread_id=thread,
                reply_markup=markup,
                protect_content=rendered.protect or None,
            )
        for image in rendered.images:
            last = await self.bot.send_photo(
                target,
                BufferedInputFile(image.data, image.filename),
                message_thread_id=thread,
                caption=render.esc(image.caption)[: render.MAX_CAPTION] or None,
                protect_content=rendered.protect or None,
            )
        for f in rendered.files:
            last = await self.bot.send_document(
                target,
                BufferedInputFile(f.data, f.filename),
                message_thread_id=thread,
                caption=render.esc(f.caption)[: render.MAX_CAPTION] or None,
                protect_content=rendered.protect or None,
            )
        if last is None:
            return None
        return MessageRef("telegram", str(target), str(last.message_id))

    async def _edit_rendered(
        self, ref: MessageRef, text: str, markup: InlineKeyboardMarkup | None
    ) -> MessageRef:
        try:
            await self.bot.edit_message_text(
                text=text, chat_id=int(ref.chat), message_id=int(ref.message), reply_markup=markup
            )
        except TelegramBadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
        return ref

    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None:
        rendered = await render.render(view, self._lang(), self._issuer(int(ref.chat)))
        if len(rendered.texts) != 1 or rendered.files or rendered.images:
            return await self.send(view, int(ref.chat))
        return await self._edit_rendered(ref, rendered.texts[0], rendered.markup)

    async def send_private(self, view: View) -> MessageRef | None:
        try:
            return await self.send(view, self.user_id)
        except TelegramForbiddenError:
            log.info("cannot message user privately (they have not started the bot)")
            return None

    async def reach_private(self) -> bool:
        """Whether the user's private chat takes messages: it does when they talk to us
        there; elsewhere a ``sendChatAction`` probe answers 403 until they have started
        the bot (or after they blocked it) — Bot API, "bot can't initiate conversation"."""
        if self.chat_private:
            return True
        try:
            await self.bot.send_chat_action(self.user_id, "typing")
        except (TelegramForbiddenError, TelegramBadRequest):
            return False
        return True

    async def delete_trigger(self) -> None:
        """Remove the user's message (it held a secret). In a group only an admin bot with
        ``can_delete_messages`` may delete others' messages (Bot API deleteMessage); when
        it fails, ``secret_visible`` says so, and nobody may claim the message is gone."""
        if self.trigger_message_id is None:
            return
        message_id, self.trigger_message_id = self.trigger_message_id, None  # delete once
        try:
            await self.bot.delete_message(self.chat_id, message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            self.secret_visible = True
            log.warning("could not delete a message holding a secret: %s", exc)

    async def resume(self, pending: dict[str, Any]) -> None:
        if self._resumer is not None:
            await self._resumer(pending)
