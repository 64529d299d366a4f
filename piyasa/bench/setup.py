"""Setup: a scripted newcomer from an empty data dir to the fleet's first group message.

Everything runs on this machine: a sandbox Telegram (an admin bot, one fleet bot already
in a group with the newcomer) and the local OpenAI-compatible server, both in this
process. The newcomer

1. runs `piyasa setup --non-interactive` (a real child process; token, admin name and
   password from the environment),
2. starts Piyasa (`piyasa up`, here in this process so the run can watch it),
3. talks to the admin bot in a private chat: /setup CODE, then the wizard (LLM by base URL
   and key, model by button, one fleet bot token, one chat id, defaults elsewhere),
   [Start system],
4. waits for the fleet's first message in the group.

Figures: the messages and taps the person needed, and the machine's seconds (wall time of
each phase with zero think time; CPU seconds of this process and the CLI child). Baseline
in the same run: `piyasa up` on an already configured data dir (same bot, chat and key) to
its first group message, i.e. what the fleet itself needs without any setup.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DESCRIPTION = "newcomer: empty data dir -> setup CLI -> /setup wizard -> first fleet message"
ADMIN_TOKEN = "7300000000:BENCH-setup-admin-bot-token-000000"
FLEET_TOKEN = "7300000001:BENCH-setup-fleet-bot-token-000000"
LLM_KEY = "sk-bench-setup-key-0123456789"
GROUP = -1007300000101
USER = 730001
PASSWORD = "bench setup password 2026"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", action="store_true", help="keep the temporary data dirs")


def _buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    kb = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data", "")) for row in kb for b in row]


@dataclasses.dataclass
class Newcomer:
    sb: Any
    user_id: int
    bot_id: int
    messages: int = 0
    taps: int = 0
    last: dict[str, Any] = dataclasses.field(default_factory=dict)

    async def _wait(self, mark: int) -> dict[str, Any]:
        self.last = await self.sb.wait_for_message(
            chat_id=self.user_id, bot_id=self.bot_id, after=mark, edits=True, timeout=30
        )
        return self.last

    async def say(self, text: str) -> dict[str, Any]:
        mark = self.sb.mark()
        await self.sb.send_user_message(self.user_id, self.user_id, text, bot_id=self.bot_id)
        self.messages += 1
        return await self._wait(mark)

    async def tap(self, label: str) -> dict[str, Any]:
        data = [d for t, d in _buttons(self.last) if label in t]
        if not data:
            raise RuntimeError(f"no button {label!r} on: {self.last.get('text')}")
        mark = self.sb.mark()
        await self.sb.press_button(
            self.user_id, self.user_id, self.last["message_id"], data[0], bot_id=self.bot_id
        )
        self.taps += 1
        return await self._wait(mark)


async def _world() -> tuple[Any, str, Any, str, int, int]:
    from piyasa.sandbox.llm_server import FakeOpenAIServer
    from piyasa.sandbox.telegram import TelegramSandbox

    sb = TelegramSandbox(enforce_limits=False)
    admin = sb.add_bot(ADMIN_TOKEN, "bench_admin_bot", "Piyasa Admin")
    fleet = sb.add_bot(FLEET_TOKEN, "bench_fleet_bot", "Borsa Sohbet")
    sb.add_user(USER, "Newcomer", "newcomer", "en")
    sb.add_group(GROUP, "BIST Sohbet", members=[fleet.id, USER])
    url = await sb.start("127.0.0.1", 0)
    llm = FakeOpenAIServer(api_keys=(LLM_KEY,), latency=(0.0, 0.0), seed=1)
    llm_url = await llm.start()
    return sb, url, llm, llm_url, admin.id, fleet.id


def _env(data_dir: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    env.update(
        PIYASA_DATA_DIR=str(data_dir),
        PIYASA_TELEGRAM_API_URL=api_url,
        PIYASA_ADMIN_BOT_TOKEN=ADMIN_TOKEN,
        PIYASA_ADMIN_USERNAME="newcomer",
        PIYASA_ADMIN_PASSWORD=PASSWORD,
        PIYASA_HTTP_PORT="0",
        PIYASA_LANG="en",
    )
    return env


async def _cli_setup(env: dict[str, str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "piyasa.cli",
        "setup",
        "--non-interactive",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"piyasa setup failed: {err.decode()[-2000:]}")
    return json.loads(out)


async def _first_fleet_message(sb: Any, fleet_bot: int, mark: int) -> float:
    start = time.perf_counter()
    await sb.wait_for_message(chat_id=GROUP, bot_id=fleet_bot, after=mark, timeout=60)
    return time.perf_counter() - start


async def _newcomer_run(root: Path) -> dict[str, Any]:
    from piyasa import app
    from piyasa.config import load_settings

    sb, url, llm, llm_url, admin_id, fleet_id = await _world()
    running = None
    try:
        data = root / "newcomer"
        t0 = time.perf_counter()
        result = await _cli_setup(_env(data, url))
        t_cli = time.perf_counter() - t0

        t1 = time.perf_counter()
        settings = load_settings({"PIYASA_DATA_DIR": str(data), "PIYASA_HTTP_PORT": "0"})
        running = await app.start(settings, printer=lambda _line: None)
        await sb.wait_for_poller(admin_id)
        t_up = time.perf_counter() - t1

        t2 = time.perf_counter()
        me = Newcomer(sb, USER, admin_id)
        await me.say(f"/setup {result['setup_code']}")
        await me.tap("Next")  # admin: MFA later
        await me.tap("Other provider")
        await me.say(llm_url)
        await me.say(LLM_KEY)
        await me.tap("gpt-4o-mini")
        await me.say(FLEET_TOKEN)
        await me.say(str(GROUP))
        await me.tap("Next")  # fleet done
        await me.tap("Keep as is")  # database
        await me.tap("Next")  # advanced: defaults
        await me.tap("Skip (no alerts)")  # admin chat: none in this run
        mark = sb.mark()
        await me.tap("Start system")
        t_wizard = time.perf_counter() - t2
        if "System started" not in me.last.get("text", ""):
            raise RuntimeError(f"wizard did not start the system: {me.last.get('text')}")
        t_first = await _first_fleet_message(sb, fleet_id, mark)
        return {
            "messages": me.messages,
            "taps": me.taps,
            "cli_commands": 2,
            "cli_setup_s": round(t_cli, 2),
            "up_s": round(t_up, 2),
            "wizard_s": round(t_wizard, 2),
            "first_message_after_start_system_s": round(t_first, 2),
            "machine_seconds": round(t_cli + t_up + t_wizard + t_first, 2),
            "llm_requests": len(llm.requests),
        }
    finally:
        if running is not None:
            await running.stop()
        await sb.stop()
        await llm.stop()


async def _baseline_run(root: Path) -> float:
    """`piyasa up` on a data dir that already holds the same bot, chat and LLM key."""
    from piyasa import app
    from piyasa.config import Secret, load_settings
    from piyasa.crypto import fingerprint
    from piyasa.db.connect import prepare_schema
    from piyasa.db.models import Bot, Chat, Setting
    from piyasa.services import Services

    sb, url, llm, llm_url, _admin_id, fleet_id = await _world()
    running = None
    try:
        env = {"PIYASA_DATA_DIR": str(root / "baseline"), "PIYASA_HTTP_PORT": "0"}
        settings = dataclasses.replace(
            load_settings(env), telegram_api_url=url, admin_bot_token=Secret(ADMIN_TOKEN)
        )
        services = Services.build(settings)
        await prepare_schema(services.engine, settings)
        async with services.sessions() as s, s.begin():
            s.add(
                Bot(
                    telegram_id=int(FLEET_TOKEN.split(":")[0]),
                    token_encrypted=services.box.encrypt(FLEET_TOKEN),
                    token_fingerprint=fingerprint(FLEET_TOKEN),
                    username="bench_fleet_bot",
                    persona={"name": "Borsa Sohbet"},
                )
            )
            s.add(Chat(telegram_id=GROUP, title="BIST Sohbet", topics=["bist", "fx"]))
            s.add(Setting(key="llm_api_key_encrypted", value=services.box.encrypt(LLM_KEY)))
            s.add(Setting(key="llm_base_url", value=llm_url))
        await services.close()
        mark = sb.mark()
        t0 = time.perf_counter()
        running = await app.start(settings, printer=lambda _line: None)
        await _first_fleet_message(sb, fleet_id, mark)
        return time.perf_counter() - t0
    finally:
        if running is not None:
            await running.stop()
        await sb.stop()
        await llm.stop()


def _warm_imports() -> None:
    import openai  # noqa: F401

    import piyasa.app
    import piyasa.runtime.fleet  # noqa: F401
    from chatops.commands import load_all
    from chatops.startup import Surfaces  # noqa: F401
    from piyasa.admin.health import HealthService  # noqa: F401

    load_all()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="piyasa-bench-setup-"))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    _warm_imports()  # neither run pays this process's import time
    try:
        baseline = await _baseline_run(root)
        newcomer = await _newcomer_run(root)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) + (
        kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
    )
    return {
        "newcomer": newcomer,
        "baseline_preconfigured_up_to_first_message_s": round(baseline, 2),
        "cpu_seconds_both_runs": round(cpu, 2),
        "target_minutes": 5,
    }
