"""A group the admin bot was added to: a candidate admin chat, or a group to leave.

Anyone can add a bot to a group (Bot API: the bot learns it from ``my_chat_member``, whose
``from`` is the user who added or promoted it), so the admin bot leaves every group that is
not an admin chat. One exception, for the /setup wizard's "Admin chat" step: a group that a
Piyasa admin added it to (the owner of a running setup wizard is one: ``/setup CODE`` links
them as admin) becomes a *candidate* for :data:`~piyasa.admin.admin_chats.CANDIDATE_TTL_S`
seconds. The bot checks it (getChat, getChatMember: an administrator with
``can_delete_messages``) and asks that admin in private — "Use <title> as the admin chat?"
— or says which right is missing and asks again when it is promoted (a new
``my_chat_member``, whoever promotes it). Meanwhile it stays silent there. Added by anyone
else, it says why in the group and leaves, as before.

The bot's arrival also brings service messages (``new_chat_members``, ``group_chat_created``)
and, from the deep link, ``/start@<bot> setup``; they may be handled before the
``my_chat_member`` update (aiogram runs updates concurrently), so :func:`holds` lets
``my_chat_member`` decide instead of leaving on them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ChatMemberUpdated, Message, TelegramObject, User

from chatops import i18n
from chatops.commands.setup.adminchat import problem_view, question_view
from chatops.telegram.render import esc
from chatops.telegram.responder import TelegramResponder
from piyasa.admin import admin_chats, identity
from piyasa.admin import audit as audit_log
from piyasa.admin.identity import ROLE_LEVEL

if TYPE_CHECKING:
    from chatops.telegram.surface import TelegramSurface

log = logging.getLogger(__name__)
PRESENT = ("member", "administrator", "restricted")


async def holds(surface: TelegramSurface, event: TelegramObject, chat_id: int) -> bool:
    """Whether an update from group ``chat_id`` (not an admin chat) should be ignored
    rather than make the bot leave: the group is a candidate, or the update is part of
    the bot's own arrival (``my_chat_member`` decides about those)."""
    if await admin_chats.proposal(surface.services, chat_id) is not None:
        return True
    if not isinstance(event, Message):
        return False
    if event.group_chat_created or event.supergroup_chat_created:
        return True
    if event.new_chat_members and any(m.id == surface.bot.id for m in event.new_chat_members):
        return True
    head = (event.text or "").split(" ", 1)[0].lower()
    return head == f"/start@{surface.username.lower()}" and bool(surface.username)


async def on_membership(surface: TelegramSurface, update: ChatMemberUpdated) -> None:
    """The bot's status changed in group ``update.chat``, which is not an admin chat."""
    services = surface.services
    chat = update.chat
    if update.new_chat_member.status not in PRESENT:  # left, kicked: nothing to ask
        await admin_chats.withdraw(services, chat.id)
        return
    pending = await admin_chats.proposal(services, chat.id)
    owner = int(pending["user"]) if pending else None
    if owner is None:
        actor = await identity.resolve(services, "telegram", update.from_user.id)
        if actor is None or actor.level < ROLE_LEVEL["admin"]:
            await refuse(surface, chat.id, update.from_user)
            return
        owner = update.from_user.id
    title = chat.title or str(chat.id)
    await admin_chats.propose(services, chat.id, owner, title)
    settings = services.settings
    found = await admin_chats.inspect(
        settings.telegram_api_url, settings.admin_bot_token.reveal(), chat.id
    )
    lang = await _lang_of(surface, owner, update.from_user)
    if found.problem:
        view = problem_view(lang, found, title)
    else:
        view = question_view(lang, chat.id, found.title or title)
    responder = TelegramResponder(
        surface.bot,
        owner,
        user_id=owner,
        tokens=surface.tokens,
        lang=lambda: lang,
        chat_private=True,
    )
    try:
        await responder.show(view)
        result = found.problem or "asked"
    except TelegramAPIError as exc:  # the admin blocked the bot: nobody to ask
        log.info("could not ask about a candidate admin chat: %s", type(exc).__name__)
        await admin_chats.withdraw(services, chat.id)
        await surface.leave(chat.id, reason="the admin who added the bot cannot be asked")
        result = "not_asked"
    await audit_log.record(
        services,
        actor=f"telegram:{update.from_user.id}",
        surface="telegram",
        action="chat.candidate",
        target=f"chat:{chat.id}",
        params={"owner": owner, "status": update.new_chat_member.status},
        result="ok" if result == "asked" else result,
        detail="candidate admin chat",
    )


async def refuse(surface: TelegramSurface, chat_id: int, adder: User) -> None:
    """Tell the group why (in the adder's language), then leave it."""
    lang = i18n.choose_lang(None, adder.language_code, surface.settings.lang)
    with contextlib.suppress(TelegramAPIError):
        await surface.bot.send_message(chat_id, esc(i18n.t(lang, "adminchat.refused_group")))
    await surface.leave(chat_id, reason="added by someone who is not a Piyasa admin")


async def _lang_of(surface: TelegramSurface, owner: int, adder: User) -> str:
    principal = await identity.resolve(surface.services, "telegram", owner)
    client_lang = adder.language_code if adder.id == owner else None
    return i18n.choose_lang(
        principal.language if principal else None, client_lang, surface.settings.lang
    )
