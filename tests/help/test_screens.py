"""The "?" targets: every command has one (its help in both languages and related
entries that exist), and a "?" press shows only what the reader may run."""

from __future__ import annotations

import pytest

from chatops import context_help, i18n
from chatops.commands import load_all
from chatops.commands.kb import related_entries, related_guides
from chatops.views import Alert, Ask, Button, Text, View
from piyasa.help.kb import LANGS, knowledge_base, screens
from tests.chatops.conftest import people, tg  # noqa: F401
from tests.chatops.harness import PEOPLE, buttons
from tests.help.test_context_help import reader
from tests.users.helpers import token_for

REGISTRY = load_all()
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize("lang", LANGS)
def test_every_command_has_a_help_target_with_related_entries(lang: str) -> None:
    missing = []
    for cmd in REGISTRY.commands.values():
        if not i18n.t(lang, cmd.help_key) or not related_entries(cmd.id, lang):
            missing.append(cmd.id)
    assert not missing
    declared = screens()
    assert set(declared) <= set(REGISTRY.commands)  # no target for a command that is gone
    assert all(i in knowledge_base().entries for ids in declared.values() for i in ids)


@SQLITE
async def test_telegram_help_button_opens_the_screen_help(tg) -> None:  # noqa: F811
    me = PEOPLE["viewer"][0]
    home = await tg.say("viewer", "/kb")
    mark = await tg.press("viewer", me, home, token_for(home, i18n.t("en", "kb.btn.about")))
    about = await tg.sb.wait_for_message(chat_id=me, edits=True, after=mark, bot_id=tg.bot_id)
    assert "/kb [QUERY]" in about["text"] and i18n.t("en", "cmd.kb.help") in about["text"]
    assert any(label.startswith("↪ ") for label, _ in buttons(about))


@SQLITE
async def test_telegram_help_never_shows_a_command_above_the_role(tg) -> None:  # noqa: F811
    uid = PEOPLE["viewer"][0]
    anchor = await tg.say("viewer", "/start")
    for cmd, shown in (("audit", False), ("settings", True), ("nope", False)):
        token = await tg.surface.tokens.issue(
            spec_id="kb.about",
            surface="telegram",
            user=str(uid),
            chat=str(uid),
            params={"cmd": cmd},
        )
        mark = tg.sb.mark()
        await tg.sb.press_button(
            uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
        )
        reply = await tg.sb.wait_for_message(chat_id=uid, edits=True, after=mark, bot_id=tg.bot_id)
        assert (i18n.t("en", f"cmd.{cmd}.help") in reply["text"]) == shown, (cmd, reply["text"])
        if not shown:
            assert i18n.t("en", "kb.about.none") in reply["text"] and cmd not in reply["text"]


# -- every command and button screen has its "?" target -----------------------------------


def test_every_command_and_view_gets_its_help_target() -> None:
    missing = []
    for spec in REGISTRY.specs():
        ctx = reader("admin")
        ctx.spec = spec
        view = context_help.decorate(ctx, View(blocks=[Text("a screen")]))
        assert view is not None
        targets = [b.params for row in view.buttons for b in row if b.action == "kb.about"]
        cmd = REGISTRY.commands[spec.command_name]
        expected = not (
            cmd.hidden or spec.id in context_help.NO_HELP or cmd.id in context_help.NO_HELP
        )
        if targets != ([{"cmd": cmd.id}] if expected else []):
            missing.append((spec.id, targets))
    assert not missing, missing


def test_help_follows_the_role_the_opt_outs_and_the_limits() -> None:
    ctx = reader("viewer")
    ctx.spec = REGISTRY.get("audit")  # admin: a viewer is never offered its help
    assert not context_help.decorate(ctx, View(blocks=[Text("x")])).buttons  # type: ignore[union-attr]
    ctx = reader("public")
    ctx.spec = REGISTRY.get("start")  # kb.about is for viewers: no "?" to press
    assert not context_help.decorate(ctx, View(blocks=[Text("x")])).buttons  # type: ignore[union-attr]
    ctx = reader("admin")
    ctx.spec = REGISTRY.get("users")
    opted = View(blocks=[Text("x")], context_help=False)
    assert not context_help.decorate(ctx, opted).buttons  # type: ignore[union-attr]
    asking = View(blocks=[Text("x")], ask=Ask("adduser", "name", "Name"))
    assert not context_help.decorate(ctx, asking).buttons  # type: ignore[union-attr]
    full = View(buttons=[[Button(str(i), "users.page")] for i in range(100)])
    assert len(context_help.decorate(ctx, full).buttons) == 100  # type: ignore[union-attr]
    error = View(blocks=[Alert("error", i18n.t("en", "users.err.last_admin"))])
    shown = context_help.decorate(ctx, error)
    assert [b.action for row in shown.buttons for b in row] == ["help.learn"]  # type: ignore[union-attr]


@pytest.mark.parametrize("lang", LANGS)
def test_help_targets_name_only_guide_pages_that_exist(lang: str) -> None:
    from piyasa.help import guides

    found = {c.id: related_guides(c.id, lang) for c in REGISTRY.commands.values()}
    assert all(guides.get(slug, lang) for pages in found.values() for slug, _t in pages)
    assert sum(1 for pages in found.values() if pages) >= len(found) * 3 // 4
