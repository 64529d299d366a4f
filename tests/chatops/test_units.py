"""Building blocks: passwords, TOTP step-up, link codes, button tokens, audit masking,
rendering limits and catalog completeness."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyotp
import pytest

from chatops import i18n
from chatops.buttons import ButtonTokens
from chatops.commands import load_all
from chatops.slack import render as slack_render
from chatops.telegram import render as tg_render
from chatops.views import Alert, Button, Fields, Table, Text, View
from piyasa.admin import audit, auth, identity
from piyasa.admin.users import add_user
from piyasa.cache import MemoryCache

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- passwords ---------------------------------------------------------------------------


def test_password_hash_is_argon2id_at_asvs_strength() -> None:
    h = auth.hash_password("correct horse battery")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert auth.verify_password(h, "correct horse battery")
    assert not auth.verify_password(h, "wrong")
    assert not auth.verify_password(None, "x")
    assert not auth.verify_password("garbage", "x")


# -- TOTP step-up --------------------------------------------------------------------------


async def test_step_up_accepts_drift_of_one_step_and_refuses_replay(services) -> None:
    info = await add_user(services, "alice", "admin")
    secret = await auth.enroll_totp(services, info.id)
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    # two steps away is refused; one step behind is accepted
    assert not (await auth.verify_step_up(services, info.id, totp.at(now - 60), now=now)).ok
    r = await auth.verify_step_up(services, info.id, totp.at(now - 30), now=now)
    assert r.ok and await auth.is_elevated(services, info.id)
    # the same code again: replayed; an older one too
    r = await auth.verify_step_up(services, info.id, totp.at(now - 30), now=now)
    assert (r.ok, r.reason) == (False, "replayed")
    # the current step is later than the accepted one: fine; one step ahead too, once
    assert (await auth.verify_step_up(services, info.id, totp.at(now), now=now)).ok
    assert (await auth.verify_step_up(services, info.id, totp.at(now + 30), now=now)).ok
    r = await auth.verify_step_up(services, info.id, totp.at(now), now=now)
    assert r.reason == "replayed"


async def test_step_up_failures_are_throttled(services) -> None:
    info = await add_user(services, "bob", "admin")
    secret = await auth.enroll_totp(services, info.id)
    for _ in range(auth.STEPUP_MAX_FAILURES):
        assert (await auth.verify_step_up(services, info.id, "000000")).reason in (
            "invalid",
            "replayed",
        )
    good = pyotp.TOTP(secret).now()
    r = await auth.verify_step_up(services, info.id, good)
    assert (r.ok, r.reason) == (False, "throttled")


async def test_step_up_without_enrolment(services) -> None:
    info = await add_user(services, "carol", "admin")
    assert (await auth.verify_step_up(services, info.id, "123456")).reason == "not_enrolled"


# -- link codes ------------------------------------------------------------------------------


async def test_link_code_is_single_use_and_expires_after_ten_minutes(services) -> None:
    t0 = 1_800_000_000.0
    info = await add_user(services, "dave", "viewer")
    code = await identity.create_link_code(services, info.id, now=t0)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    r = await identity.redeem_link_code(
        services, code.lower().replace("-", ""), "telegram", 42, now=t0 + 1
    )
    assert r.ok and r.username == "dave"
    assert (await identity.resolve(services, "telegram", 42)).username == "dave"
    again = await identity.redeem_link_code(services, code, "telegram", 43, now=t0 + 2)
    assert (again.ok, again.reason) == (False, "invalid")
    late = await identity.create_link_code(services, info.id, now=t0)
    late2 = await identity.create_link_code(
        services, info.id, now=t0 + identity.LINK_CODE_TTL_S - 1
    )
    after = t0 + identity.LINK_CODE_TTL_S + 1
    assert (
        await identity.redeem_link_code(services, late, "telegram", 44, now=after)
    ).reason == "invalid"
    assert (await identity.redeem_link_code(services, late2, "telegram", 44, now=after)).ok


async def test_link_code_from_another_process_survives_a_memory_cache(services) -> None:
    """`piyasa user link-code` exits at once; the bot process must still accept the code."""
    info = await add_user(services, "gina", "operator")
    code = await identity.create_link_code(services, info.id)
    services.cache = MemoryCache()  # the running bot: a different process, an empty cache
    assert (await identity.redeem_link_code(services, code, "telegram", 77)).ok


async def test_concurrent_redemptions_let_exactly_one_win(services) -> None:
    import asyncio

    info = await add_user(services, "hank", "viewer")
    code = await identity.create_link_code(services, info.id)
    results = await asyncio.gather(
        *(identity.redeem_link_code(services, code, "telegram", 80 + i) for i in range(4)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException) and r.ok) == 1


async def test_link_code_cannot_steal_a_linked_account(services) -> None:
    a = await add_user(services, "erin", "viewer", telegram_id=50)
    b = await add_user(services, "frank", "admin")
    code = await identity.create_link_code(services, b.id)
    r = await identity.redeem_link_code(services, code, "telegram", 50)
    assert r.reason == "taken"
    assert (await identity.resolve(services, "telegram", 50)).user_id == a.id


# -- button tokens --------------------------------------------------------------------------


async def test_button_tokens_forgery_expiry_and_binding(cache) -> None:
    tokens = ButtonTokens(cache, ttl=60)
    t = await tokens.issue(spec_id="x.y", surface="telegram", user="1", chat="2", params={"p": 1})
    assert len(t.encode()) <= 64
    assert (await tokens.resolve(t, surface="telegram", user="1", chat="2")).params == {"p": 1}
    assert await tokens.resolve(t, surface="telegram", user="9", chat="2") is None
    assert await tokens.resolve(t, surface="telegram", user="1", chat="3") is None
    assert await tokens.resolve(t, surface="slack", user="1", chat="2") is None
    assert (
        await tokens.resolve("b:AAAAAAAAAAAAAAAA", surface="telegram", user="1", chat="2") is None
    )
    assert await tokens.resolve("x" * 100, surface="telegram", user="1", chat="2") is None
    once = await tokens.issue(spec_id="x.y", surface="telegram", user="1", chat="2", once=True)
    assert await tokens.resolve(once, surface="telegram", user="1", chat="2")
    assert await tokens.resolve(once, surface="telegram", user="1", chat="2") is None


async def test_button_tokens_expire() -> None:
    clock = Clock()
    tokens = ButtonTokens(MemoryCache(clock=clock), ttl=60)
    t = await tokens.issue(spec_id="x", surface="telegram", user="1", chat="2")
    clock.now += 61
    assert await tokens.resolve(t, surface="telegram", user="1", chat="2") is None


# -- audit -----------------------------------------------------------------------------------


def test_audit_masks_secrets() -> None:
    masked = audit.mask_params(
        {"code": "123456", "password": "pw", "api_key": "k", "role": "admin", "n": {"token": "t"}}
    )
    assert masked == {
        "code": "***",
        "password": "***",
        "api_key": "***",
        "role": "admin",
        "n": {"token": "***"},
    }
    assert audit.mask_params({"x": "s3cret"}, {"x"}) == {"x": "***"}


# -- Telegram rendering -----------------------------------------------------------------------


async def _issue(button: Button) -> str:
    return "b:" + "A" * 16


def _balanced(html: str) -> bool:
    stack = []
    for m in re.finditer(r"<(/?)(\w+)[^>]*>", html):
        if m.group(1):
            if not stack or stack.pop() != m.group(2):
                return False
        else:
            stack.append(m.group(2))
    return not stack and not re.search(r"&[a-z]*$", html)


@pytest.mark.parametrize("size", [100, 4096, 5000, 20000])
async def test_telegram_split_never_cuts_tags_or_entities(size: int) -> None:
    nasty = ("<b>&amp; tom & jerry > 🙂 " * (size // 20))[:size]
    view = View(
        title="T" * 5000,
        blocks=[
            Text(nasty),
            Text(nasty, style="bold"),
            Text("x" * 9000, style="code"),
            Table(["a", "b"], [[str(i), "&" * 30] for i in range(400)]),
            Fields({"k": "v" * 6000}),
            Alert("error", nasty),
        ],
    )
    out = await tg_render.render(view, "en", _issue)
    assert out.texts
    for text in out.texts:
        assert 1 <= tg_render.u16(text) <= 4096
        assert _balanced(text), text[-80:]
    joined = "".join(out.texts)
    assert "&lt;b&gt;&amp;amp;" in joined  # user text is escaped, never markup


async def test_telegram_keyboard_limits() -> None:
    view = View(buttons=[[Button(str(i), "help") for i in range(30)] for _ in range(5)])
    kb = await tg_render.keyboard(view, "en", _issue)
    assert kb is not None
    assert all(len(row) <= 8 for row in kb.inline_keyboard)
    assert sum(len(r) for r in kb.inline_keyboard) == 100


# -- Slack rendering ----------------------------------------------------------------------


async def test_slack_blocks_within_limits() -> None:
    from tests.chatops.slack_server import block_errors

    view = View(
        title="x" * 200,
        blocks=[Text("y" * 10000), *(Text(f"line {i} <&>") for i in range(80))],
        buttons=[[Button(str(i), "help") for i in range(30)]],
    )
    messages = await slack_render.render(view, "en", _issue)
    assert len(messages) >= 2
    for m in messages:
        assert not block_errors(m["blocks"]), block_errors(m["blocks"])
    assert any(b["type"] == "actions" for b in messages[-1]["blocks"])
    assert "&lt;&amp;&gt;" in json.dumps(messages)


# -- catalogs -------------------------------------------------------------------------------


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    tr, en = i18n.catalog("tr"), i18n.catalog("en")
    assert set(tr) == set(en), set(tr) ^ set(en)
    for key in en:
        ph = set(re.findall(r"{(\w+)}", en[key]))
        assert ph == set(re.findall(r"{(\w+)}", tr[key])), key


def test_every_key_used_in_code_and_every_command_help_exists() -> None:
    used: set[str] = set()
    pattern = re.compile(
        r"""(?:\bt\(|i18n\.t\(\s*[\w.()]+\s*,\s*|ctx\.t\(|refusal\(\s*ctx\s*,\s*)f?["']([a-z_]+(?:\.[a-z_{}.]+)+)["']"""
    )
    for path in (ROOT / "chatops").rglob("*.py"):
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert len(used) > 20
    registry = load_all()
    expanded = set()
    for key in used:
        if "{" in key:
            prefix = key.split("{")[0]
            matches = [k for k in i18n.catalog("en") if k.startswith(prefix)]
            assert matches, key
            continue
        expanded.add(key)
    expanded |= {c.help_key for c in registry.commands.values()}
    expanded |= {f"stepup.{r}" for r in ("invalid", "replayed", "throttled", "not_enrolled")}
    expanded |= {f"link.{r}" for r in ("invalid", "taken", "gone", "throttled")}
    for lang in i18n.LANGS:
        missing = sorted(k for k in expanded if k not in i18n.catalog(lang))
        assert not missing, (lang, missing)
