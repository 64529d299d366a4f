"""`piyasa setup [--non-interactive]`: first run, from an empty data dir to `/setup CODE`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from piyasa.clicmd.check import MARK
from piyasa.config import load_settings, mask_url


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "setup",
        help="first-run setup: checks, admin bot token, first admin, config file",
        description="Check the machine, verify the admin bot token (getMe), create the first "
        "admin (optional TOTP), write DATA_DIR/.env (mode 0600, secrets encrypted) and print "
        "a one-time code to continue in Telegram with /setup CODE. --non-interactive takes "
        "everything from the environment (PIYASA_ADMIN_BOT_TOKEN, PIYASA_ADMIN_USERNAME, "
        "PIYASA_ADMIN_PASSWORD, ...) and flags, and lists every problem at once.",
    )
    p.add_argument("--non-interactive", action="store_true", help="never ask; use env and flags")
    p.add_argument("--admin-username", help="first admin (default PIYASA_ADMIN_USERNAME)")
    p.add_argument("--telegram-api-url", help="Bot API server (default PIYASA_TELEGRAM_API_URL)")
    p.add_argument("--database-url", help="database to use (default PIYASA_DATABASE_URL)")
    p.add_argument("--lang", choices=["tr", "en"], help="default language")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


@dataclass
class Terminal:
    """How the interactive setup talks; tests pass scripted answers."""

    say: Callable[[str], None] = print
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass.getpass


def _env_with_flags(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.telegram_api_url:
        env["PIYASA_TELEGRAM_API_URL"] = args.telegram_api_url
    if args.database_url:
        env["PIYASA_DATABASE_URL"] = args.database_url
    if args.lang:
        env["PIYASA_LANG"] = args.lang
    if args.admin_username:
        env["PIYASA_ADMIN_USERNAME"] = args.admin_username
    return env


async def run(args: argparse.Namespace) -> int:
    env = _env_with_flags(args)
    if args.non_interactive:
        return await non_interactive(None, env, as_json=args.json)
    settings = load_settings(env)
    return await interactive(settings, env, Terminal())


async def _services(settings):  # type: ignore[no-untyped-def]
    from piyasa.db.connect import check_reachable, prepare_schema
    from piyasa.db.migrate import upgrade
    from piyasa.services import Services

    services = Services.build(settings)
    await check_reachable(services.engine, settings)
    if settings.sqlite_default:
        await prepare_schema(services.engine, settings)
    else:
        await upgrade(services.engine)  # a fresh PostgreSQL database gets its schema here
    return services


async def non_interactive(settings, env: dict[str, str], *, as_json: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Check everything first (every malformed variable, every configured connection, the
    admin's name and password) and create nothing — no schema, no admin, no config file —
    unless all of it passed. ``settings`` None: read them from ``env`` leniently."""
    from piyasa.admin.setup import firstrun, preflight

    env_problems: list[str] = []
    if settings is None:
        settings, env_problems = preflight.load_lenient(env)
    if settings is None:
        res = firstrun.Result(problems=env_problems)
        return _report(res, as_json)
    plan = firstrun.Plan(
        token=settings.admin_bot_token.reveal(),
        username=env.get("PIYASA_ADMIN_USERNAME", "").strip(),
        password=env.get("PIYASA_ADMIN_PASSWORD", ""),
        config=firstrun.config_from_env(env, settings),
    )
    for bad in [p.split(" ", 1)[0].split("=", 1)[0] for p in env_problems]:
        plan.config.pop(bad, None)  # never persist a value that was refused
    plan.config.pop("PIYASA_ADMIN_BOT_TOKEN", None)
    admin = await preflight.existing_admin(settings)
    need_admin = not admin or bool(plan.username and plan.username.strip().lower() != admin)
    res = await firstrun.validate(
        settings, plan, need_admin=need_admin, env_problems=env_problems, env=env
    )
    if res.ok:
        services = None
        try:
            services = await _services(settings)
            res = await firstrun.carry_out(services, plan, res)
        except Exception as exc:  # checked a moment ago; say what broke, no traceback
            res.problems.append(
                f"setup stopped while writing: {type(exc).__name__}: {mask_url(str(exc))[:200]}"
            )
        finally:
            if services is not None:
                await services.close()
    return _report(res, as_json)


def _report(res, as_json: bool) -> int:  # type: ignore[no-untyped-def]
    if as_json:
        print(json.dumps(res.as_json(), indent=2))
    if not res.ok:
        if not as_json:
            print(f"piyasa setup: {len(res.problems)} problem(s):", file=sys.stderr)
            for problem in res.problems:
                print(f"  ✗ {problem}", file=sys.stderr)
        return 1
    if not as_json:
        for w in res.warnings:
            print(f"  ! {w}")
        _print_done(print, res)
    return 0


def _print_done(say: Callable[[str], None], res) -> None:  # type: ignore[no-untyped-def]
    bot = res.bot.get("username", "yourbot")
    say(f"Configuration written to {res.config_file} (mode 0600, secrets encrypted).")
    say(f"Admin account: {res.admin}" + (" (created)" if res.admin_created else " (existing)"))
    say("")
    say("Next: start Piyasa with `piyasa up --detach` (or `piyasa up`), then")
    say(f"open a private chat with @{bot} and send:  /setup {res.code}")
    say("(the code works once, for 60 minutes; `piyasa setup` again prints a new one)")


async def interactive(settings, env: dict[str, str], term: Terminal) -> int:  # type: ignore[no-untyped-def]
    from piyasa.admin import passwords
    from piyasa.admin.setup import checks, firstrun, verify

    say = term.say
    say("Piyasa setup — step 1/4: checking this machine")
    machine = checks.machine_checks(settings)
    for c in machine:
        say(
            f"  {MARK[c.state.value]} {c.name}: {c.summary}"
            + (f"\n      fix: {c.fix}" if c.fix else "")
        )
    if any(c.critical for c in machine):
        say("Fix the ✗ items above and run `piyasa setup` again.")
        return 1

    say("\nStep 2/4: the admin bot (create one with @BotFather: /newbot)")
    token = settings.admin_bot_token.reveal()
    bot: dict = {}
    for _attempt in range(5):
        if not token:
            token = term.ask_secret("Admin bot token (hidden): ").strip()
        if not token:
            say("  A token is needed; paste the one @BotFather sent you.")
            continue
        me = await verify.telegram_get_me(settings.telegram_api_url, token)
        if me.ok:
            bot = me.data
            say(f"  ✓ @{bot['username']} ({bot['first_name']})")
            break
        say(f"  ✗ {firstrun.token_problem(me, settings.telegram_api_url)}")
        token = ""
    if not bot:
        say("No working admin bot token; run `piyasa setup` again when you have one.")
        return 1

    plan = firstrun.Plan(token=token, config=firstrun.config_from_env(env, settings))
    plan.config.pop("PIYASA_ADMIN_BOT_TOKEN", None)
    await _ask_admin_chat(settings, plan, bot, term)
    services = await _services(settings)
    try:
        say("\nStep 3/4: the first admin account")
        admin = await firstrun.existing_admin(services)
        if admin:
            say(f"  ✓ admin account {admin!r} exists already")
        else:
            plan.username = (term.ask("Username [admin]: ").strip() or "admin").lower()
            while True:
                pw = term.ask_secret(f"Password (at least {passwords.MIN_LENGTH} characters): ")
                s = passwords.strength(pw, plan.username)
                say(f"  {passwords.describe_en(s)}")
                if s.refused:
                    continue
                if term.ask_secret("Repeat password: ") != pw:
                    say("  The passwords differ; again.")
                    continue
                plan.password = pw
                break
        res = firstrun.Result(bot=bot)
        res = await firstrun.carry_out(services, plan, res)
        if not res.ok:
            for p in res.problems:
                say(f"  ✗ {p}")
            return 1
        if res.admin_created:
            await _offer_totp(services, res.admin, term)
        say("\nStep 4/4: done")
        _print_done(say, res)
        return 0
    finally:
        await services.close()


async def _offer_totp(services, username: str, term: Terminal) -> None:  # type: ignore[no-untyped-def]
    from piyasa.admin import auth
    from piyasa.admin.setup import wizard
    from piyasa.admin.users import get_user

    say = term.say
    if term.ask("Turn on two-factor codes (TOTP) now? [Y/n]: ").strip().lower() in (
        "n",
        "no",
        "h",
        "hayır",
    ):
        say("  Skipped; you can turn it on in the Telegram wizard (/setup).")
        return
    info = await get_user(services, username)
    secret = auth.new_totp_secret()
    uri = auth.totp_uri(secret, username)
    say("Scan this with your authenticator app (or type the key below):")
    say(wizard.totp_qr_text(uri))
    say(f"  key: {secret}")
    for _ in range(3):
        code = term.ask("Code shown by the app: ").strip()
        step = auth.matching_step(secret, code)
        if step is not None:
            await wizard.enable_totp(services, info.id, services.box.encrypt(secret), step)
            say("  ✓ two-factor codes are on")
            return
        say("  ✗ that code does not match; check the phone's clock and try the next code")
    say("  Not turned on; you can do it later in the Telegram wizard (/setup).")


async def _ask_admin_chat(settings, plan, bot: dict, term: Terminal) -> None:  # type: ignore[no-untyped-def]
    """Where alerts go: an admin group, checked with getChat and getChatMember (the bot
    can post and delete there). Empty skips it, with the warning that alerts go nowhere."""
    from piyasa.admin.setup import preflight

    say = term.say
    if settings.admin_chat_ids:
        say(f"  ✓ admin chat(s) {', '.join(map(str, settings.admin_chat_ids))} (alerts go there)")
        return
    say(
        f"\nAlerts go to an admin group: create one, add @{bot['username']}, make it an "
        "administrator with 'Delete messages', and give the group's id (e.g. -1001234567890)."
    )
    for _attempt in range(5):
        raw = term.ask("Admin chat id (empty to skip): ").strip()
        if not raw:
            break
        try:
            chat_id = int(raw)
        except ValueError:
            say("  ✗ a chat id is a number like -1001234567890")
            continue
        title, problem = await preflight.admin_chat_problem(settings, plan.token, chat_id)
        if problem:
            say(f"  ✗ {problem}")
            continue
        plan.config["PIYASA_ADMIN_CHAT_IDS"] = str(chat_id)
        say(f"  ✓ {title} ({chat_id}): alerts will be posted there")
        return
    say("  ! no admin chat: alerts have no destination until PIYASA_ADMIN_CHAT_IDS is set")
