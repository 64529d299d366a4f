"""A newcomer talking to the admin bot in the sandbox, and a whole `piyasa up` to talk to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from piyasa.config import Secret, load_settings
from piyasa.sandbox.llm_server import FakeOpenAIServer
from tests.waiting import PatientSandbox

ADMIN_TOKEN = "7200000000:SETUP-admin-bot-token-for-the-tests-0"
FLEET_TOKEN = "7200000001:SETUP-fleet-bot-1-token-for-the-test-0"
FLEET_TOKEN_2 = "7200000002:SETUP-fleet-bot-2-token-for-the-test-0"
UNKNOWN_TOKEN = "7200000009:SETUP-nobody-has-this-token-at-all-0"
LLM_KEY = "sk-setup-good-key-0123456789abcdef"
GROUP = -1007200000101
NEWCOMER = 720001
TURKISH = 720002
PASSWORD = "correct horse battery staple 42"


@dataclass
class Sandbox:
    sb: PatientSandbox
    url: str
    llm: FakeOpenAIServer
    llm_url: str
    admin_bot_id: int
    fleet_bot_id: int

    async def stop(self) -> None:
        await self.sb.stop()
        await self.llm.stop()


async def start_sandbox() -> Sandbox:
    sb = PatientSandbox(enforce_limits=False)
    admin = sb.add_bot(ADMIN_TOKEN, "kurulum_admin_bot", "Piyasa Admin")
    fleet = sb.add_bot(FLEET_TOKEN, "borsa_sohbet_bot", "Borsa Sohbet")
    sb.add_bot(FLEET_TOKEN_2, "ikinci_bot", "İkinci")
    sb.add_user(NEWCOMER, "Newcomer", "newcomer", "en")
    sb.add_user(TURKISH, "Ayşe", "ayse", "tr")
    sb.add_group(GROUP, "BIST Sohbet", members=[fleet.id, NEWCOMER, TURKISH])
    url = await sb.start("127.0.0.1", 0)
    llm = FakeOpenAIServer(api_keys=(LLM_KEY,), latency=(0.0, 0.0), seed=7)
    llm_url = await llm.start()
    return Sandbox(sb, url, llm, llm_url, admin.id, fleet.id)


def settings_for(data_dir: Path, api_url: str, **extra: str):  # type: ignore[no-untyped-def]
    env = {
        "PIYASA_DATA_DIR": str(data_dir),
        "PIYASA_HTTP_PORT": "0",
        "PIYASA_TELEGRAM_API_URL": api_url,
        "PIYASA_LANG": "en",
        **extra,
    }
    return load_settings(env)


def with_token(settings, token: str = ADMIN_TOKEN):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, admin_bot_token=Secret(token))


def buttons(message: dict) -> list[tuple[str, str]]:
    kb = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data", "")) for row in kb for b in row]


@dataclass
class Person:
    """Someone in a private chat with the admin bot; counts what they had to do."""

    sb: PatientSandbox
    user_id: int
    bot_id: int
    messages: int = 0
    taps: int = 0
    sent_ids: list[int] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)

    async def _wait(self, mark: int, expect: str) -> dict:
        self.last = await self.sb.wait_for_message(
            (lambda m: expect in (m.get("text") or "")) if expect else None,
            chat_id=self.user_id,
            bot_id=self.bot_id,
            after=mark,
            edits=True,
        )
        return self.last

    async def say(self, text: str, expect: str = "") -> dict:
        mark = self.sb.mark()
        msg = await self.sb.send_user_message(self.user_id, self.user_id, text, bot_id=self.bot_id)
        self.messages += 1
        self.sent_ids.append(msg["message_id"])
        return await self._wait(mark, expect)

    async def tap(
        self,
        label: str,
        message: dict | None = None,
        expect: str = "",
    ) -> dict:
        message = message or self.last
        found = [data for text, data in buttons(message) if label in text]
        if not found:
            raise AssertionError(
                f"no button {label!r} in {buttons(message)}: {message.get('text')}"
            )
        mark = self.sb.mark()
        await self.sb.press_button(
            self.user_id, self.user_id, message["message_id"], found[0], bot_id=self.bot_id
        )
        self.taps += 1
        return await self._wait(mark, expect)

    def has(self, label: str, message: dict | None = None) -> bool:
        return any(label in text for text, _ in buttons(message or self.last))
