"""Per-user command menus, kept by the surfaces that have them (Telegram).

A command that changes what a user may run or the language they read (link, language,
role, lock) calls :func:`refresh_user`; a running surface registers how it refreshes, so
the core never imports a surface. Menus are a convenience, never security: a failed
refresh is logged and the command's answer still goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from piyasa.services import Services

log = logging.getLogger(__name__)
Refresher = Callable[[int], Awaitable[None]]
_KEY = "chatops.menu_refreshers"


def register(services: Services, refresher: Refresher) -> None:
    services.extras.setdefault(_KEY, []).append(refresher)


def unregister(services: Services, refresher: Refresher) -> None:
    refreshers: list[Refresher] = services.extras.get(_KEY, [])
    if refresher in refreshers:
        refreshers.remove(refresher)


async def refresh_user(services: Services, user_id: int) -> None:
    """Show panel user ``user_id`` the menu of their current role and language."""
    for refresher in list(services.extras.get(_KEY, [])):
        try:
            await refresher(user_id)
        except Exception as exc:
            log.warning("refreshing a command menu failed: %s", type(exc).__name__)
