"""One password policy on every surface. The setup wizard on Telegram used to accept
``password1234``, which the CLI refused: now every entry point where a password is typed
refuses the same weak ones, and accepts the same good one."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from chatops import i18n
from piyasa.admin import passwords
from piyasa.admin import users as svc
from piyasa.config import load_settings
from piyasa.services import Services
from tests.chatops.conftest import start_slack, start_telegram
from tests.chatops.harness import TelegramWorld, seed_people, with_admin_settings
from tests.chatops.slack_server import SlackServer, dm_of, slack_text
from tests.setup.helpers import (
    ADMIN_TOKEN,
    NEWCOMER,
    Sandbox,
    settings_for,
    start_sandbox,
    with_token,
)
from tests.users.helpers import private, slack_answer, slack_token, tap

WEAK = (
    "password1234",  # what the wizard accepted
    "Password1234!",
    "piyasa123456",
    "parola2026!!",
    "123456789012",
    "abcabcabcabc",
    "kısa-şifre",
)
GOOD = "Kırmızı-balık-uçar-7"
CURRENT = "operators-current-passphrase"
REASONS = tuple(passwords.PROBLEM_TEXT)
Attempt = Callable[[str], Awaitable[str]]  # type a password, get what the surface answers


def refused(text: str) -> bool:
    """The answer names a policy reason: the chat's (English) wording or the shell's."""
    return any(
        i18n.t("en", f"users.err.password_{r}") in text or passwords.PROBLEM_TEXT[r] in text
        for r in REASONS
    )


def test_the_policy_refuses_each_weak_password_and_the_hint_agrees() -> None:
    for weak in WEAK:
        assert passwords.problem(weak) is not None, weak
        assert passwords.strength(weak).refused, weak
    assert passwords.problem(GOOD) is None and not passwords.strength(GOOD).refused
    assert passwords.problem(passwords.generate_temporary()) is None


# -- chat: Telegram and Slack, on SQLite and PostgreSQL ------------------------------------


@asynccontextmanager
async def telegram_world(services: Services) -> AsyncIterator[TelegramWorld]:
    await seed_people(services)
    async for tg in start_telegram(services):
        yield tg


@asynccontextmanager
async def telegram_adduser(services: Services) -> AsyncIterator[Attempt]:
    async with telegram_world(services) as tg:
        me = private("admin")
        await tg.say("admin", "/adduser")
        roles = await tg.say("admin", "newbie")
        assert "Step 3/6" in (await tap(tg, "admin", me, roles, "operator"))["text"]

        async def attempt(password: str) -> str:
            return (await tg.say("admin", password))["text"]

        yield attempt


@asynccontextmanager
async def telegram_password_command(services: Services) -> AsyncIterator[Attempt]:
    async with telegram_world(services) as tg:
        await svc.set_password(services, svc.CLI, "user_operator", CURRENT)

        async def attempt(password: str) -> str:
            return (await tg.say("operator", f"/password {CURRENT} {password}"))["text"]

        yield attempt


@asynccontextmanager
async def slack_world(services: Services) -> AsyncIterator[tuple]:  # type: ignore[type-arg]
    await seed_people(services)
    with_admin_settings(services, "http://127.0.0.1:9")
    server = SlackServer()
    await server.start()
    try:
        async for client, _surface in start_slack(services, server):
            yield client, server
    finally:
        await server.stop()


@asynccontextmanager
async def slack_adduser(services: Services) -> AsyncIterator[Attempt]:
    async with slack_world(services) as (slack, server):
        _, _ack, url = await slack.slash("U0ADMIN", "adduser")
        step = await slack_answer(slack, server, "U0ADMIN", "deniz", url)  # in the modal
        _, url = await slack.press("U0ADMIN", slack_token(step, "viewer"))
        assert "Step 3/6" in slack_text((await server.wait_response(url))[-1])
        await server.wait_view("U0ADMIN", count=2)  # the password modal

        async def attempt(password: str) -> str:
            # a refusal shows under the modal's input, the next step in the conversation
            answer = await slack_answer(slack, server, "U0ADMIN", password, url)
            return answer["errors"]["answer"] if "errors" in answer else slack_text(answer)

        yield attempt


@asynccontextmanager
async def slack_password_command(services: Services) -> AsyncIterator[Attempt]:
    async with slack_world(services) as (slack, _server):
        await svc.set_password(services, svc.CLI, "user_operator", CURRENT)

        async def attempt(password: str) -> str:
            dm = dm_of("U0OPERATOR")  # /password is private-only: the app's DM
            return slack_text(
                (await slack.slash("U0OPERATOR", f"password {CURRENT} {password}", channel=dm))[1]
            )

        yield attempt


CHAT = {
    "telegram /adduser dialog": (telegram_adduser, "Step 4/6"),
    "telegram /password": (telegram_password_command, "password is changed"),
    "slack /piyasa adduser dialog": (slack_adduser, "Step 4/6"),
    "slack /piyasa password": (slack_password_command, "password is changed"),
}


@pytest.mark.parametrize("surface", list(CHAT))
async def test_chat_entry_points_refuse_weak_passwords(surface: str, services: Services) -> None:
    driver, accepted = CHAT[surface]
    async with driver(services) as attempt:
        for weak in WEAK:
            answer = await attempt(weak)
            assert refused(answer), (weak, answer)
        answer = await attempt(GOOD)
        assert accepted in answer and not refused(answer), answer


# -- the shell and first run: `piyasa user`, `piyasa setup`, the Telegram /setup wizard -------
# (SQLite in the data dir, as installed; the setup ones verify the bot token on a sandbox)


def shell(argv: list[str], stdin: str, capsys: pytest.CaptureFixture) -> str:
    """`piyasa ARGV` in this process (its own event loop: run it in a thread)."""
    from piyasa.cli import main

    sys.stdin = io.StringIO(stdin)
    code = main(argv)
    out, err = capsys.readouterr()
    return f"exit {code}\n{out}{err}"


@asynccontextmanager
async def cli_user_add(tmp_path: Path, capsys: pytest.CaptureFixture) -> AsyncIterator[Attempt]:
    names = itertools.count()

    async def attempt(password: str) -> str:
        argv = ["user", "add", f"u{next(names)}", "--role", "viewer", "--password-stdin"]
        return await asyncio.to_thread(shell, argv, password + "\n", capsys)

    yield attempt


@asynccontextmanager
async def cli_reset_password(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> AsyncIterator[Attempt]:
    await asyncio.to_thread(shell, ["user", "add", "ops", "--role", "viewer"], "", capsys)

    async def attempt(password: str) -> str:
        argv = ["user", "reset-password", "ops", "--password-stdin"]
        return await asyncio.to_thread(shell, argv, password + "\n", capsys)

    yield attempt


@asynccontextmanager
async def setup_sandbox() -> AsyncIterator[Sandbox]:
    box = await start_sandbox()
    try:
        yield box
    finally:
        await box.stop()


@asynccontextmanager
async def cli_setup_non_interactive(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> AsyncIterator[Attempt]:
    from piyasa.clicmd.setup import non_interactive

    async with setup_sandbox() as box:

        async def attempt(password: str) -> str:
            env = {
                "PIYASA_DATA_DIR": str(tmp_path / "data"),
                "PIYASA_HTTP_PORT": "0",
                "PIYASA_TELEGRAM_API_URL": box.url,
                "PIYASA_ADMIN_BOT_TOKEN": ADMIN_TOKEN,
                "PIYASA_ADMIN_USERNAME": "boss",
                "PIYASA_ADMIN_PASSWORD": password,
            }
            code = await non_interactive(load_settings(env), env)
            out, err = capsys.readouterr()
            return f"exit {code}\n{out}{err}"

        yield attempt


@asynccontextmanager
async def cli_setup_interactive(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> AsyncIterator[Attempt]:
    """Each attempt is a whole run on a fresh data dir; after a refusal it asks again, and
    the good password (typed, then repeated) lets it finish."""
    from piyasa.clicmd.setup import Terminal, interactive

    runs = itertools.count()
    async with setup_sandbox() as box:

        async def attempt(password: str) -> str:
            n = next(runs)
            said: list[str] = []
            typed = iter([password, GOOD, GOOD])
            answers = {"Username": f"admin{n}", "Turn on two-factor": "n", "Admin chat id": ""}

            def ask(prompt: str) -> str:
                return next(v for k, v in answers.items() if prompt.startswith(k))

            settings = with_token(settings_for(tmp_path / f"run{n}", box.url))
            term = Terminal(say=said.append, ask=ask, ask_secret=lambda _prompt: next(typed))
            assert await interactive(settings, {}, term) == 0, said
            return next(line for line in said if "refused:" in line or "strength:" in line)

        yield attempt


@asynccontextmanager
async def telegram_setup_wizard(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> AsyncIterator[Attempt]:
    """A whole `piyasa up` in this process; the newcomer redeems the setup code and sends
    passwords at the "Set password" step."""
    from tests.setup.conftest import World

    async with setup_sandbox() as box:
        world = World(box, tmp_path / "data")
        await world.start()
        try:
            me = world.person(NEWCOMER)
            await me.say(f"/setup {await world.admin_with_code('boss')}", expect="Step 1/7")
            await me.tap("Set password")

            async def attempt(password: str) -> str:
                return (await me.say(password))["text"]

            yield attempt
        finally:
            await world.stop()


SHELL_AND_FIRST_RUN = {
    "piyasa user add --password-stdin": (cli_user_add, "created u"),
    "piyasa user reset-password --password-stdin": (cli_reset_password, "password of ops is set"),
    "piyasa setup --non-interactive": (cli_setup_non_interactive, "Admin account: boss (created)"),
    "piyasa setup (interactive)": (cli_setup_interactive, "strength: strong"),
    "telegram /setup wizard": (telegram_setup_wizard, "Password saved"),
}


@pytest.mark.parametrize("surface", list(SHELL_AND_FIRST_RUN))
async def test_shell_and_first_run_entry_points_refuse_weak_passwords(
    surface: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for key in [k for k in os.environ if k.startswith(("PIYASA_", "OPENAI_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "stdin", sys.stdin)  # `shell` replaces it; restored after
    driver, accepted = SHELL_AND_FIRST_RUN[surface]
    async with driver(tmp_path, capsys) as attempt:
        for weak in WEAK:
            answer = await attempt(weak)
            assert refused(answer), (weak, answer)
        answer = await attempt(GOOD)
        assert accepted in answer and not refused(answer), answer
