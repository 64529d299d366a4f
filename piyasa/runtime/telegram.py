"""aiogram clients of the fleet bots, all pointed at the configured Bot API base URL.

Sending and long polling use two shared aiohttp sessions: polls hold a connection for
up to their timeout, and must never starve the sends of connections.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer


class TelegramClients:
    def __init__(self, api_url: str, *, send_limit: int = 256, poll_limit: int = 512) -> None:
        api = TelegramAPIServer.from_base(api_url)
        self.send_session = AiohttpSession(api=api, limit=send_limit)
        self.poll_session = AiohttpSession(api=api, limit=poll_limit)
        self._send: dict[int, Bot] = {}
        self._poll: dict[int, Bot] = {}
        self._tokens: dict[int, str] = {}

    def set_token(self, bot_id: int, token: str) -> None:
        if self._tokens.get(bot_id) != token:
            self._tokens[bot_id] = token
            self._send.pop(bot_id, None)
            self._poll.pop(bot_id, None)

    def has(self, bot_id: int) -> bool:
        return bot_id in self._tokens

    def sender(self, bot_id: int) -> Bot:
        bot = self._send.get(bot_id)
        if bot is None:
            bot = self._send[bot_id] = Bot(self._tokens[bot_id], session=self.send_session)
        return bot

    def poller(self, bot_id: int) -> Bot:
        bot = self._poll.get(bot_id)
        if bot is None:
            bot = self._poll[bot_id] = Bot(self._tokens[bot_id], session=self.poll_session)
        return bot

    async def close(self) -> None:
        await self.send_session.close()
        await self.poll_session.close()
