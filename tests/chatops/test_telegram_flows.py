"""The admin bot end to end against the sandbox with real aiogram: chat gate, linking,
buttons, step-up, confirmation, splitting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pyotp
import pytest

from chatops import i18n
from piyasa.admin import audit, auth
from piyasa.admin.users import link_code_for
from tests.chatops.conftest import start_telegram
from tests.chatops.harness import (
    ADMIN_GROUP,
    PEOPLE,
    STRANGER_GROUP,
    TelegramWorld,
    audit_count,
    buttons,
    next_audit,
    registry_for_tests,
    wait_answer,
)
from tests.waiting import until


@pytest.fixture
async def tgx(services, people) -> AsyncIterator[TelegramWorld]:  # type: ignore[no-untyped-def]
    async for world in start_telegram(services, registry_for_tests()):
        world.user_ids = people
        yield world


async def test_unknown_user_is_told_how_to_link_in_their_language(tg) -> None:
    tg.sb.add_user(820001, "Ayşe", "ayse", "tr")
    mark = tg.sb.mark()
    await tg.sb.send_user_message(820001, 820001, "/whoami", bot_id=tg.bot_id)
    reply = await tg.sb.wait_for_message(chat_id=820001, after=mark)
    assert "bağlantı kodu" in reply["text"] and "820001" in reply["text"]
    assert "/link" in reply["text"]


async def test_admin_help_in_group_lists_commands_viewer_sees_less(tg) -> None:
    admin = await tg.say("admin", "/help", group=True)
    assert "/linkcode" in admin["text"] and "/whoami" in admin["text"]
    viewer = await tg.say("viewer", "/help", group=True)
    assert "/whoami" in viewer["text"] and "linkcode" not in viewer["text"]
    detail = await tg.say("viewer", "/help linkcode", group=True)
    assert detail["text"] == "⛔ " + i18n.t("en", "refuse.denied", help_cmd="/help")


async def test_forwarded_and_sender_chat_messages_are_refused(tg) -> None:
    n = await audit_count(tg.services)
    reply = await tg.say("admin", "/whoami", group=True, forward_from_user_id=PEOPLE["admin"][0])
    assert reply["text"] == i18n.t("en", "refuse.forwarded")
    assert (await next_audit(tg.services, n)).result == "refused_forwarded"
    n = await audit_count(tg.services)
    reply = await tg.say("admin", "/whoami", group=True, sender_chat_id=ADMIN_GROUP)
    assert reply["text"] == i18n.t("en", "refuse.forwarded")
    assert (await next_audit(tg.services, n)).result == "refused_forwarded"


async def test_bot_leaves_groups_that_are_not_admin_chats(tg) -> None:
    mark = tg.sb.mark()
    tg.sb.add_member(STRANGER_GROUP, tg.bot_id, by=PEOPLE["unlinked"][0])
    await tg.sb.send_user_message(PEOPLE["unlinked"][0], STRANGER_GROUP, "/help")
    # the bot answers nothing there and leaves; at most it tells the adder why it goes
    # (when the news that it was added reaches it before the /help does)
    await until(lambda: (tg.bot_id, STRANGER_GROUP) in tg.sb.left_chats, "the bot to leave")
    said = [
        e["message"].get("text", "")
        for e in tg.sb.events[mark:]
        if e.get("chat_id") == STRANGER_GROUP and e.get("from_bot") and e["type"] == "message"
    ]
    assert all("Only a Piyasa admin can add me" in text for text in said), said


async def test_link_code_flow_single_use_and_voided_in_groups(tg) -> None:
    code = await link_code_for(tg.services, "user_viewer")
    tg.sb.add_user(820002, "New", "newbie", "en")
    mark = tg.sb.mark()
    await tg.sb.send_user_message(820002, 820002, f"/link {code}", bot_id=tg.bot_id)
    reply = await tg.sb.wait_for_message(chat_id=820002, after=mark)
    assert "user_viewer" in reply["text"]
    assert (820002, reply["message_id"] - 1) in tg.sb.deleted  # the code left the chat
    again = await tg.say("unlinked", f"/link {code}")
    assert again["text"].startswith("⛔") and "unknown, already used or expired" in again["text"]
    code2 = await link_code_for(tg.services, "user_viewer")
    group = await tg.say("unlinked", f"/link {code2}", group=True)
    assert "void" in group["text"]
    private = await tg.say("unlinked", f"/link {code2}")
    assert "unknown, already used or expired" in private["text"]
    rows = await audit.recent(tg.services, 10, action="link")
    assert rows and all(code not in str(r.params) and code2 not in str(r.params) for r in rows)


async def test_language_buttons_edit_in_place(tg) -> None:
    msg = await tg.say("viewer", "/lang")
    (_tr_label, tr_token), _en, _help = buttons(msg)  # h17ctx: ❓ Help last
    uid = PEOPLE["viewer"][0]
    mark = await tg.press("viewer", uid, msg, tr_token)
    edited = await tg.sb.wait_for_message(chat_id=uid, edits=True, after=mark)
    assert edited["message_id"] == msg["message_id"] and "Türkçe" in edited["text"]
    who = await tg.say("viewer", "/whoami")
    assert "Hesabınız" in who["text"]


async def test_forged_foreign_and_stale_buttons_change_nothing(tg) -> None:
    msg = await tg.say("viewer", "/lang")
    uid = PEOPLE["viewer"][0]
    token = buttons(msg)[0][1]
    expected = i18n.t("en", "refuse.button")
    qid = await tg.sb.press_button(
        uid, uid, msg["message_id"], "b:forgedforgedforg", forge=True, bot_id=tg.bot_id
    )
    assert (await wait_answer(tg.sb, qid))["text"] == expected
    # someone else's button: the admin's own /lang message, pressed by the viewer
    group_msg = await tg.say("admin", "/lang", group=True)
    qid = await tg.sb.press_button(
        uid, ADMIN_GROUP, group_msg["message_id"], buttons(group_msg)[0][1]
    )
    assert (await wait_answer(tg.sb, qid))["text"] == expected
    # stale: the server forgot it (expired)
    await tg.services.cache.delete(f"btn:{token}")
    qid = await tg.sb.press_button(uid, uid, msg["message_id"], token, bot_id=tg.bot_id)
    assert (await wait_answer(tg.sb, qid))["text"] == expected
    assert not tg.sb.calls("editMessageText")
    n = await audit_count(tg.services)
    qid = await tg.sb.press_button(uid, uid, msg["message_id"], token, bot_id=tg.bot_id)
    await wait_answer(tg.sb, qid)
    assert (await next_audit(tg.services, n, action="button")).result == "refused_button"


async def test_step_up_then_confirmation_then_run(tgx) -> None:
    admin_id = tgx.user_ids["admin"]
    secret = await auth.enroll_totp(tgx.services, admin_id)
    uid = PEOPLE["admin"][0]
    await tgx.say("admin", "/start")  # the admin has a private chat with the bot
    prompt = await tgx.say("admin", "/danger prod", group=True)
    assert "authenticator" in prompt["text"] and tgx.surface.registry.fired == []
    assert "I have sent you a private message" in prompt["text"]
    dm = await tgx.sb.wait_for_message(chat_id=uid, bot_id=tgx.bot_id)
    assert "6-digit" in dm["text"]
    # a wrong code, then the right one
    bad = await tgx.say("admin", "000000")
    assert "not right" in bad["text"]
    code = pyotp.TOTP(secret).now()
    mark = tgx.sb.mark()
    await tgx.sb.send_user_message(uid, uid, code, bot_id=tgx.bot_id)
    ok = await tgx.sb.wait_for_message(chat_id=uid, after=mark)
    assert "Confirmed" in ok["text"]
    confirm = await tgx.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert "Are you sure" in confirm["text"]
    (_yes_label, yes), (_no_label, _no) = buttons(confirm)
    mark = await tgx.press("admin", ADMIN_GROUP, confirm, yes)
    done = await tgx.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert done["message_id"] == confirm["message_id"] and "destroyed prod" in done["text"]
    assert tgx.surface.registry.fired == ["prod"]
    # the Confirm button was single use
    qid = await tgx.sb.press_button(uid, ADMIN_GROUP, confirm["message_id"], yes, forge=True)
    assert (await wait_answer(tgx.sb, qid))["text"] == i18n.t("en", "refuse.button")
    # replaying the accepted code is refused
    replay = await tgx.say("admin", f"/stepup {code}")
    assert "already used" in replay["text"]
    results = [r.result for r in await audit.recent(tgx.services, 50, action="stepup")]
    assert "ok" in results and "failed_replayed" in results and "failed_invalid" in results
    assert tgx.surface.registry.fired == ["prod"]


@pytest.mark.parametrize("lang", ["en", "tr"])
async def test_step_up_in_group_without_a_private_chat_says_how_to_open_one(tgx, lang) -> None:
    from piyasa.admin.identity import set_language

    admin_id = tgx.user_ids["admin"]
    await auth.enroll_totp(tgx.services, admin_id)
    await set_language(tgx.services, admin_id, lang)
    uid = PEOPLE["admin"][0]
    n = await audit_count(tgx.services)
    # the admin never wrote to the bot privately: Telegram answers the DM with 403
    reply = await tgx.say("admin", "/danger prod", group=True)
    bot = tgx.surface.username
    assert bot and reply["text"] == "⛔ " + i18n.t(lang, "stepup.no_private_chat", bot=bot)
    assert f"@{bot}" in reply["text"]
    assert not tgx.sb.sent(uid, tgx.bot_id)  # nothing reached a private chat
    row = await next_audit(tgx.services, n, action="danger")
    assert row.result == "refused_no_private_chat" and "not started" in (row.detail or "")
    assert tgx.surface.registry.fired == []
    assert await tgx.services.cache.get(f"stepup:pending:telegram:{uid}") is None
    # after pressing Start, running the command again asks for the code in private
    await tgx.say("admin", "/start")
    mark = tgx.sb.mark()
    prompt = await tgx.say("admin", "/danger prod", group=True)
    assert i18n.t(lang, "stepup.prompt_group", surface_hint="")[:30] in prompt["text"]
    dm = await tgx.sb.wait_for_message(chat_id=uid, bot_id=tgx.bot_id, after=mark)
    assert dm["text"].endswith(i18n.t(lang, "stepup.dm"))
    assert tgx.surface.registry.fired == []


async def test_step_up_refused_without_mfa_and_for_non_admins(tgx) -> None:
    reply = await tgx.say("admin", "/danger x", group=True)
    assert "not set up" in reply["text"]
    reply = await tgx.say("operator", "/danger x", group=True)
    assert reply["text"] == "⛔ " + i18n.t("en", "refuse.denied", help_cmd="/help")
    assert tgx.surface.registry.fired == []


async def test_long_views_are_split_safely(tgx) -> None:
    uid = PEOPLE["viewer"][0]
    mark = tgx.sb.mark()
    await tgx.sb.send_user_message(uid, uid, "/long", bot_id=tgx.bot_id)
    first = await tgx.sb.wait_for_message(chat_id=uid, after=mark)
    msgs = [m for m in tgx.sb.sent(uid, tgx.bot_id) if m["message_id"] >= first["message_id"]]
    while "row 599" not in msgs[-1].get("text", ""):
        await tgx.sb.wait_for_message(chat_id=uid)
        msgs = [m for m in tgx.sb.sent(uid, tgx.bot_id) if m["message_id"] >= first["message_id"]]
    assert len(msgs) >= 6
    text = "\n".join(m["text"] for m in msgs)
    assert all(f"<row {i}> & more" in text for i in range(600))
    assert all(len(m["text"]) <= 4096 for m in msgs)


async def test_pager_buttons_navigate_in_place(tgx) -> None:
    uid = PEOPLE["viewer"][0]
    msg = await tgx.say("viewer", "/pages")
    labels = [label for label, _ in buttons(msg)]
    assert labels == ["❓ Help", "1/3", "Next ›"]  # h17ctx: every screen has its ❓ Help
    mark = await tgx.press("viewer", uid, msg, buttons(msg)[2][1])
    edited = await tgx.sb.wait_for_message(chat_id=uid, edits=True, after=mark)
    assert edited["text"] == "page 2" and edited["message_id"] == msg["message_id"]
    assert [label for label, _ in buttons(edited)] == ["❓ Help", "‹ Prev", "2/3", "Next ›"]


async def test_command_menus_per_role_and_language(tg) -> None:
    await tg.surface.sync_commands()
    calls = tg.sb.calls("setMyCommands")
    scopes = {}
    for c in calls:
        p = c["params"]
        scopes[(str(p.get("scope")), p.get("language_code"))] = str(p.get("commands"))
    default = [v for k, v in scopes.items() if "default" in k[0]]
    assert default and all("linkcode" not in v and "whoami" not in v for v in default)
    admin_scope = [v for k, v in scopes.items() if str(PEOPLE["admin"][0]) in k[0]]
    viewer_scope = [v for k, v in scopes.items() if str(PEOPLE["viewer"][0]) in k[0]]
    assert admin_scope and all("linkcode" in v for v in admin_scope)
    assert viewer_scope and all("linkcode" not in v and "whoami" in v for v in viewer_scope)
    assert any(k[1] == "tr" for k in scopes)


async def _menus_synced(tg) -> None:  # type: ignore[no-untyped-def]
    """Let the start-up menu sync finish, so it cannot overwrite what a test checks."""
    import asyncio

    await asyncio.gather(*tg.surface._background, return_exceptions=True)


async def _menu(tg, user_id: int, chat_id: int | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from aiogram.types import BotCommandScopeChat, BotCommandScopeChatMember

    scope = (
        BotCommandScopeChat(chat_id=user_id)
        if chat_id is None
        else BotCommandScopeChatMember(chat_id=chat_id, user_id=user_id)
    )
    return {c.command: c.description for c in await tg.surface.bot.get_my_commands(scope=scope)}


def _expected_menu(tg, level: int, lang: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.id: i18n.t(lang, c.help_key) for c in tg.surface.registry.visible(level)}


async def test_link_gives_the_new_user_the_menu_of_their_role(tg) -> None:
    from piyasa.admin.users import add_user

    await _menus_synced(tg)
    await add_user(tg.services, "fresh_operator", "operator")
    code = await link_code_for(tg.services, "fresh_operator")
    tg.sb.add_user(820003, "Fresh", "fresh", "en")
    assert await _menu(tg, 820003) == {}
    mark = tg.sb.mark()
    await tg.sb.send_user_message(820003, 820003, f"/link {code}", bot_id=tg.bot_id)
    reply = await tg.sb.wait_for_message(chat_id=820003, after=mark)
    assert "fresh_operator" in reply["text"]
    operator_menu = _expected_menu(tg, 2, "en")
    assert operator_menu != _expected_menu(tg, 0, "en")
    assert await _menu(tg, 820003) == operator_menu
    assert await _menu(tg, 820003, ADMIN_GROUP) == operator_menu
    scopes = [str(c["params"].get("scope")) for c in tg.sb.calls("setMyCommands")]
    assert any("820003" in scope for scope in scopes)


async def test_language_change_refreshes_the_menu(tg) -> None:
    await _menus_synced(tg)
    uid = PEOPLE["viewer"][0]
    assert "Language set" in (await tg.say("viewer", "/lang en"))["text"]
    assert await _menu(tg, uid) == _expected_menu(tg, 1, "en")
    await tg.say("viewer", "/lang tr")
    turkish = _expected_menu(tg, 1, "tr")
    assert turkish != _expected_menu(tg, 1, "en")
    assert await _menu(tg, uid) == turkish
    assert await _menu(tg, uid, ADMIN_GROUP) == turkish


async def test_lock_and_demotion_apply_on_the_next_request(tg) -> None:
    from sqlalchemy import update

    from piyasa.admin.identity import users_changed
    from piyasa.db.models import User

    assert "user_admin" in (await tg.say("admin", "/whoami"))["text"]
    async with tg.services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.username == "user_admin").values(locked=True))
    await users_changed(tg.services)
    reply = await tg.say("admin", "/whoami")
    assert reply["text"] == "⛔ " + i18n.t("en", "refuse.locked")


async def test_private_result_never_claims_a_refused_private_message(tg) -> None:
    """A private-only result (the audit CSV) pressed in a group by an admin who never
    opened a private chat: the group is told how to open one, not "sent privately"."""
    uid = PEOPLE["admin"][0]
    listing = await tg.say("admin", "/audit", group=True)
    csv_button = next(data for label, data in buttons(listing) if "CSV" in label)
    mark = await tg.press("admin", ADMIN_GROUP, listing, csv_button)
    note = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    bot = tg.surface.username
    assert note["text"] == i18n.t("en", "render.private_refused", bot=bot)
    assert note["text"] != i18n.t("en", "render.sent_private")
    assert not [m for m in tg.sb.sent(uid, tg.bot_id) if m.get("document")]
