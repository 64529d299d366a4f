"""The admin bot follows its group when Telegram upgrades it to a supergroup.

Telegram announces the upgrade twice (Bot API, Message): a service message with
``migrate_to_chat_id`` in the old chat and one with ``migrate_from_chat_id`` in the new
``-100…`` chat. A call that still names the old id fails with 400 "Bad Request: group chat
was upgraded to a supergroup chat" and ``parameters.migrate_to_chat_id`` (ResponseParameters),
which aiogram raises as ``TelegramMigrateToChat``. Either way the admin chat list takes the
new id (:func:`piyasa.admin.admin_chats.migrated`), the operators are told in the new chat,
the move is audited, and a call that met the 400 is made again on the new id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramAPIError, TelegramMigrateToChat

from chatops import i18n
from piyasa.admin import admin_chats
from piyasa.admin import audit as audit_log

if TYPE_CHECKING:
    from chatops.telegram.surface import TelegramSurface

log = logging.getLogger(__name__)


async def follow(surface: TelegramSurface, old: int, new: int, how: str) -> bool:
    """Admin chat ``old`` is now ``new`` (learned ``how``: "service message" or "400");
    False when ``old`` was not an admin chat or the move was already followed."""
    if not await admin_chats.migrated(surface.services, old, new):
        return False
    log.warning("admin chat %s became supergroup %s (%s): following it", old, new, how)
    await audit_log.record(
        surface.services,
        actor="system",
        surface="telegram",
        action="chat.migrate",
        target=f"chat:{new}",
        params={"from": old, "learned_from": how},
        result="ok",
        detail=f"group {old} upgraded to supergroup {new}",
    )
    lang = surface.settings.lang
    try:
        await surface.bot.send_message(new, i18n.t(lang, "chat.migrated", old=old, new=new))
    except TelegramAPIError as exc:
        log.warning("could not tell the admin chat about its new id: %s", type(exc).__name__)
    surface.resync_menus()
    return True


class FollowMigration(BaseRequestMiddleware):
    """A call answered "upgraded to a supergroup" is made again on the new chat id, once;
    an admin chat's move is followed first (:func:`follow`)."""

    def __init__(self, surface: TelegramSurface) -> None:
        self.surface = surface

    async def __call__(self, make_request: Any, bot: Bot, method: Any) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramMigrateToChat as exc:
            new = int(exc.migrate_to_chat_id)
            moved = retarget(method, new)
            if moved is None:
                raise
            old, again = moved
            await follow(self.surface, old, new, "400")
            return await make_request(bot, again)


def retarget(method: Any, new: int) -> tuple[int, Any] | None:
    """(old chat id, the same call naming ``new``) for a call that names a chat by its
    numeric id, directly (``chat_id``) or through a command scope (``scope.chat_id``)."""
    old = getattr(method, "chat_id", None)
    if isinstance(old, int) and old != new:
        return old, method.model_copy(update={"chat_id": new})
    scope = getattr(method, "scope", None)
    old = getattr(scope, "chat_id", None)
    if scope is not None and isinstance(old, int) and old != new:
        return old, method.model_copy(update={"scope": scope.model_copy(update={"chat_id": new})})
    return None
