"""Opaque button tokens: the client only ever holds ``tokenstring``; what it means stays
server-side in the cache, bound to one user, one chat, one surface and an expiry.

A forged token finds nothing, a stale one has expired from the cache, and a token pressed
by someone else or in another chat does not match its binding; all three answer the same
"expired or not yours", so a prober learns nothing. Buttons on a message the system posts
to a chat for everyone there (an alert in the admin group) are bound to that chat and to
``ANY_USER``: the pipeline then authorizes each presser by role, like any other press.

Tokens keep working when Redis goes away: the cache keeps a local copy of every token this
process issued (``Cache.keep_local``) and issues new ones locally until Redis is back
(:class:`piyasa.cache.RedisCache`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from chatops.views import Button, TokenIssuer
from piyasa.cache import Cache

TOKEN_PREFIX = "b:"
ANY_USER = "*"  # messages the system posts to a chat (alerts): whoever may press, per role
TOKEN_BYTES = 12  # 16 url-safe characters; callback_data is "b:" + 16 = 18 bytes
DEFAULT_TTL_S = 6 * 3600
_KEY = "btn:"


@dataclass(frozen=True)
class Press:
    """What a valid token stands for."""

    spec_id: str
    params: dict[str, Any]
    args_text: str
    confirmed: bool
    once: bool


class ButtonTokens:
    def __init__(self, cache: Cache, ttl: float = DEFAULT_TTL_S) -> None:
        self.cache = cache
        self.ttl = ttl
        keep_local = getattr(cache, "keep_local", None)
        if keep_local is not None:
            keep_local(_KEY)

    async def issue(
        self,
        *,
        spec_id: str,
        surface: str,
        user: str,
        chat: str,
        params: dict[str, Any] | None = None,
        args_text: str = "",
        confirmed: bool = False,
        once: bool = False,
        ttl: float | None = None,
    ) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        await self.cache.set(
            _KEY + token,
            {
                "a": spec_id,
                "p": params or {},
                "x": args_text,
                "c": confirmed,
                "o": once,
                "s": surface,
                "u": str(user),
                "ch": str(chat),
            },
            ttl=ttl or self.ttl,
        )
        return token

    def issuer(self, *, surface: str, user: str, chat: str) -> TokenIssuer:
        """The renderer's callback: every button of one message gets a token bound to
        the same surface, user and chat."""

        async def issue(button: Button) -> str:
            return await self.issue(
                spec_id=button.action,
                surface=surface,
                user=user,
                chat=chat,
                params=button.params,
                args_text=button.args_text,
                confirmed=button.confirmed,
                once=button.once,
            )

        return issue

    async def resolve(self, token: str, *, surface: str, user: str, chat: str) -> Press | None:
        """The press behind ``token`` if it exists and is bound to this user and chat."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 64:
            return None
        key = _KEY + token
        data = await self.cache.get(key)
        if not data or data["s"] != surface or data["ch"] != str(chat):
            return None
        if data["u"] not in (str(user), ANY_USER):
            return None
        if data.get("o") and await self.cache.pop(key) is None:
            return None  # a concurrent press of a single-use button already consumed it
        return Press(
            spec_id=data["a"],
            params=dict(data.get("p") or {}),
            args_text=data.get("x") or "",
            confirmed=bool(data.get("c")),
            once=bool(data.get("o")),
        )
