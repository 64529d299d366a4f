"""Issue 11, item 13: the setup wizard tests an LLM key at the provider Piyasa is configured
for, never at api.openai.com.

The provider is configured the way `piyasa setup` leaves it: ``OPENAI_BASE_URL`` in
``DATA_DIR/.env``, read into Piyasa's settings but absent from the process environment
(where the openai SDK would look on its own). Any HTTPS request leaving the process goes
to a local proxy trap through ``HTTPS_PROXY``, so a key sent towards api.openai.com is
caught here instead of leaving the machine.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from piyasa.admin.setup import verify
from piyasa.config import load_settings
from tests.setup.conftest import ADMIN_GROUP, World
from tests.setup.helpers import LLM_KEY, NEWCOMER, start_sandbox

pytestmark = pytest.mark.e2e


@dataclass
class ProxyTrap:
    """Answers every proxied request with 502 and remembers its first line
    (``CONNECT api.openai.com:443 HTTP/1.1``)."""

    lines: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.lines.append(line.decode("latin-1").strip())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def trap(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ProxyTrap]:
    found = ProxyTrap()
    url = await found.start()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    try:
        yield found
    finally:
        await found.stop()


@pytest.fixture
async def provider_world(tmp_path: Path, trap: ProxyTrap) -> AsyncIterator[World]:
    """`piyasa up` whose DATA_DIR/.env names the local OpenAI-compatible server."""
    box = await start_sandbox()
    box.sb.add_group(ADMIN_GROUP, "Yönetim", members=[box.admin_bot_id, NEWCOMER])
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    (data_dir / ".env").write_text(f"OPENAI_BASE_URL={box.llm_url}\n", encoding="utf-8")
    world = World(box, data_dir)
    await world.start()
    try:
        yield world
    finally:
        await world.stop()
        await box.stop()


async def test_the_wizard_tests_a_key_at_the_configured_provider(
    provider_world: World, trap: ProxyTrap
) -> None:
    world, llm = provider_world, provider_world.box.llm
    assert world.services.settings.openai_base_url == world.box.llm_url
    assert "OPENAI_BASE_URL" not in os.environ
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    await me.tap("Next")
    assert "Step 2/7" in me.last["text"]
    assert f"Provider: {world.box.llm_url}" in me.last["text"]  # where the key will go

    answered = llm.stats.get(200, 0)
    reply = await me.say(LLM_KEY)
    assert "offers 3 models" in reply["text"], reply["text"]
    assert llm.stats.get(200, 0) == answered + 1  # models.list, answered by the local server
    reply = await me.say("sk-this-key-is-wrong-000000")
    assert "rejected this API key (401)" in reply["text"], reply["text"]
    assert llm.stats.get(401, 0) == 1
    assert trap.lines == []  # nothing went towards api.openai.com (or anywhere else)


def test_the_endpoint_is_the_chosen_then_the_configured_then_openai(tmp_path: Path) -> None:
    configured = load_settings(
        {"PIYASA_DATA_DIR": str(tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    )
    plain = load_settings({"PIYASA_DATA_DIR": str(tmp_path)})
    assert verify.llm_base_url("https://llm.example/v1", configured) == "https://llm.example/v1"
    assert verify.llm_base_url("", configured) == "http://127.0.0.1:1/v1"
    assert verify.llm_base_url(None, plain) == verify.OPENAI_API_BASE
