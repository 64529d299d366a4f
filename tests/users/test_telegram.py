"""User management on Telegram (sandbox + real aiogram), SQLite and PostgreSQL."""

from __future__ import annotations

import pyotp

from chatops import i18n
from piyasa.admin import audit, auth, passwords
from piyasa.admin import users as svc
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, buttons, wait_answer
from tests.users.helpers import private, tap, tap_new, token_for


async def test_users_list_search_filter_card_and_refusal(tg) -> None:
    me = private("admin")
    msg = await tg.say("admin", "/users")
    assert msg["text"].startswith("Users (4)")
    assert "user_viewer" in msg["text"] and "just now" in msg["text"] and "never" in msg["text"]
    labels = [label for label, _ in buttons(msg)]
    assert "👤 user_operator" in labels and "Per page: 10" in labels
    found = await tg.say("admin", "/users oper")
    assert "Users (1)" in found["text"] and "user_viewer" not in found["text"]
    # role filter cycles all -> viewer; the message is edited in place
    edited = await tap(tg, "admin", me, msg, "Role: all")
    assert edited["message_id"] == msg["message_id"] and "Users (1)" in edited["text"]
    assert "user_viewer" in edited["text"] and "role viewer" in edited["text"]
    card = await tap(tg, "admin", me, edited, "👤 user_viewer")
    assert "👤 user_viewer" in card["text"] and "Failed logins: 0 in a row" in card["text"]
    assert "Last login: never" in card["text"] and "Two-factor: off" in card["text"]
    back = await tap(tg, "admin", me, card, "« List")
    assert "role viewer" in back["text"]  # the list comes back with its filters
    # non-admins are refused, with the generic words
    for role in ("viewer", "operator"):
        reply = await tg.say(role, "/users")
        assert reply["text"] == "⛔ " + i18n.t("en", "refuse.denied", help_cmd="/help")
    # Turkish relative time
    await tg.say("admin", "/lang tr")
    tr = await tg.say("admin", "/users")
    assert "az önce" in tr["text"] and "Kullanıcılar (4)" in tr["text"]


async def test_pages_of_10_25_50_and_sort(tg) -> None:
    for i in range(27):
        await svc.add_user(tg.services, f"bulk{i:02d}", "viewer")
    me = private("admin")
    msg = await tg.say("admin", "/users")
    assert "Users (31)" in msg["text"] and "1/4" in [label for label, _ in buttons(msg)]
    msg = await tap(tg, "admin", me, msg, "Per page: 10")
    assert "1/2" in [label for label, _ in buttons(msg)] and msg["text"].count("bulk") == 25
    msg = await tap(tg, "admin", me, msg, "Next ›")
    assert "2/2" in [label for label, _ in buttons(msg)] and "user_viewer" in msg["text"]
    msg = await tap(tg, "admin", me, msg, "Sort: name")
    assert "Sort: newest" in [label for label, _ in buttons(msg)]
    first_row = msg["text"].split("\n")[3]  # title, header, rule, first row
    assert "bulk26" in first_row


async def test_role_change_confirm_single_use_and_make_admin_needs_step_up(tg) -> None:
    import asyncio

    from aiogram.types import BotCommandScopeChat

    await asyncio.gather(*tg.surface._background)  # the start-up menu sync is done
    me = private("admin")
    card = await tg.say("admin", "/users viewer")
    card = await tap(tg, "admin", me, card, "👤 user_viewer")
    confirm = await tap(tg, "admin", me, card, "→ operator")
    assert "Change the role of user_viewer to operator?" in confirm["text"]
    yes = token_for(confirm, "Yes")

    def viewer_menu_sets() -> list:
        scope = f"'chat_id': {PEOPLE['viewer'][0]}"
        return [c for c in tg.sb.calls("setMyCommands") if scope in str(c["params"].get("scope"))]

    menus_before = len(viewer_menu_sets())
    done = await tap(tg, "admin", me, confirm, "Yes")
    assert "user_viewer is now operator" in done["text"] and "Role: operator" in done["text"]
    # the viewer's own menu now lists the operator's commands
    menu = await tg.surface.bot.get_my_commands(
        scope=BotCommandScopeChat(chat_id=PEOPLE["viewer"][0])
    )
    assert [c.command for c in menu] == [c.id for c in tg.surface.registry.visible(2)]
    assert len(viewer_menu_sets()) > menus_before  # refreshed (viewer and operator menus match)
    # the confirmation is single use: a second press changes nothing
    qid = await tg.sb.press_button(PEOPLE["admin"][0], me, confirm["message_id"], yes, forge=True)
    assert (await wait_answer(tg.sb, qid))["text"] == i18n.t("en", "refuse.button")
    rows = await audit.recent(tg.services, 20, action="user.role")
    assert rows[0].params == {"before": {"role": "viewer"}, "after": {"role": "operator"}}
    assert rows[0].actor == "user_admin" and rows[0].surface == "telegram"
    # making someone admin needs a step-up, and this admin has no authenticator yet
    qid = await tg.sb.press_button(
        PEOPLE["admin"][0], me, done["message_id"], token_for(done, "→ admin"), bot_id=tg.bot_id
    )
    assert "not set up" in (await wait_answer(tg.sb, qid))["text"]
    assert (await svc.get_user(tg.services, "user_viewer")).role == "operator"


async def test_self_lockout_and_last_admin_are_refused(tg) -> None:
    me = private("admin")
    card = await tg.say("admin", "/users user_admin")
    card = await tap(tg, "admin", me, card, "👤 user_admin")
    assert "→ admin" not in [label for label, _ in buttons(card)]
    confirm = await tap(tg, "admin", me, card, "Lock")
    refused = await tap(tg, "admin", me, confirm, "Yes")
    assert "own account" in refused["text"]
    assert not (await svc.get_user(tg.services, "user_admin")).locked
    rows = await audit.recent(tg.services, 5, action="user.lock")
    assert rows[0].result == "refused_self"
    # a second admin tries to demote the only active admin that is left
    await svc.set_role(tg.services, svc.CLI, "user_operator", "admin")
    await svc.set_locked(tg.services, svc.CLI, "user_operator", True)
    await svc.set_locked(tg.services, svc.CLI, "user_operator", False)
    await svc.set_locked(tg.services, svc.CLI, "user_admin", True)
    op = private("operator")
    card = await tg.say("operator", "/users user_operator")
    card = await tap(tg, "operator", op, card, "👤 user_operator")
    confirm = await tap(tg, "operator", op, card, "→ viewer")
    refused = await tap(tg, "operator", op, confirm, "Yes")
    assert "own account" in refused["text"]


async def test_reset_password_goes_private_and_protected(tg) -> None:
    await tg.say("admin", "/start")
    group = await tg.say("admin", "/users operator", group=True)
    card = await tap(tg, "admin", ADMIN_GROUP, group, "👤 user_operator")
    confirm = await tap(tg, "admin", ADMIN_GROUP, card, "Reset password")
    mark = await tg.press("admin", ADMIN_GROUP, confirm, token_for(confirm, "Yes"))
    secret = await tg.sb.wait_for_message(chat_id=private("admin"), after=mark)
    note = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark, edits=True)
    assert note["text"] == "✅ " + i18n.t("en", "render.sent_private")
    assert note["message_id"] == confirm["message_id"]  # the confirmation gives way to it
    assert secret.get("has_protected_content") is True
    temp = secret["text"].split("\n")[1].strip()
    assert len(temp) == 19 and temp.count("-") == 3
    result = await passwords.check_login(tg.services, "user_operator", temp)
    assert result.ok and result.must_change
    # nothing in the group carries it
    assert all(temp not in (m.get("text") or "") for m in tg.sb.messages(ADMIN_GROUP))


async def test_add_user_dialog_with_back_cancel_and_typed_password(tg) -> None:
    me = private("admin")
    step = await tg.say("admin", "/adduser")
    assert "Step 1/6" in step["text"] and "✖ Cancel" in [label for label, _ in buttons(step)]
    bad = await tg.say("admin", "Not A Name!")
    assert "not valid" in bad["text"] and "Step 1/6" in bad["text"]
    taken = await tg.say("admin", "user_viewer")
    assert "taken" in taken["text"]
    roles = await tg.say("admin", "newbie")
    assert "Step 2/6" in roles["text"]
    pw_step = await tap(tg, "admin", me, roles, "operator")
    assert "Step 3/6" in pw_step["text"]
    mark = tg.sb.mark()
    weak = await tg.say("admin", "password1234")
    assert "common passwords" in weak["text"]
    good_pw = "Kırmızı-balık-uçar-7"
    sent = await tg.sb.send_user_message(me, me, good_pw, bot_id=tg.bot_id)
    must = await tg.sb.wait_for_message(chat_id=me, bot_id=tg.bot_id)
    assert "Step 4/6" in must["text"]
    assert (me, sent["message_id"]) in tg.sb.deleted  # the typed password left the chat
    assert all(good_pw not in (m.get("text") or "") for m in tg.sb.messages(me, tg.bot_id))
    assert len([d for d in tg.sb.deleted if d[0] == me]) >= 2  # the weak one too
    mfa = await tap(tg, "admin", me, must, "yes")
    back = await tap(tg, "admin", me, mfa, "Back")
    assert "Step 4/6" in back["text"]
    mfa = await tap(tg, "admin", me, back, "no")
    summary = await tap(tg, "admin", me, mfa, "Later")
    assert "Step 6/6" in summary["text"] and "newbie" in summary["text"]
    done = await tap_new(tg, "admin", me, summary, "Create")
    assert done.get("has_protected_content") is True and "link code" in done["text"]
    info = await svc.get_user(tg.services, "newbie")
    assert info.role == "operator" and info.has_password
    assert (await passwords.check_login(tg.services, "newbie", good_pw)).ok
    del mark
    # the dialog is over; Cancel of a fresh one changes nothing
    start = await tg.say("admin", "/adduser")
    cancelled = await tap(tg, "admin", me, start, "Cancel")
    assert "Cancelled" in cancelled["text"]
    hint = await tg.say("admin", "someone")
    assert hint["text"] == i18n.t("en", "hint.commands_only")


async def test_bulk_lock_preview_names_everyone_and_one_confirmation(tg) -> None:
    me = private("admin")
    msg = await tg.say("admin", "/users")
    msg = await tap(tg, "admin", me, msg, "Select")
    for name in ("user_viewer", "user_operator", "user_admin"):
        msg = await tap(tg, "admin", me, msg, f"☐ {name}")
    assert "Selected: 3" in msg["text"]
    preview = await tap(tg, "admin", me, msg, "Lock")
    assert "lock 2 user(s): user_operator, user_viewer." in preview["text"]
    assert "Skipped: user_admin (that is you)" in preview["text"]
    done = await tap(tg, "admin", me, preview, "Yes")
    assert "Done: lock 2 user(s)" in done["text"]
    assert (await svc.get_user(tg.services, "user_viewer")).locked
    assert (await svc.get_user(tg.services, "user_operator")).locked
    reply = await tg.say("viewer", "/whoami")
    assert reply["text"] == "⛔ " + i18n.t("en", "refuse.locked")


async def test_delete_needs_typed_name_and_step_up(tg) -> None:
    me = private("admin")
    secret = await auth.enroll_totp(tg.services, tg.user_ids["admin"])
    card = await tg.say("admin", "/users viewer")
    card = await tap(tg, "admin", me, card, "👤 user_viewer")
    how = await tap(tg, "admin", me, card, "Delete")
    assert "/deluser user_viewer" in how["text"]
    prompt = await tg.say("admin", "/deluser user_viewer")
    assert "authenticator" in prompt["text"]
    assert await svc.user_ids(tg.services, ["user_viewer"])
    mark = tg.sb.mark()
    await tg.sb.send_user_message(me, me, pyotp.TOTP(secret).now(), bot_id=tg.bot_id)
    await tg.sb.wait_for_message(chat_id=me, after=mark)  # "Confirmed"
    done = await tg.sb.wait_for_message(chat_id=me, bot_id=tg.bot_id)
    assert "user_viewer is deleted" in done["text"]
    assert not await svc.user_ids(tg.services, ["user_viewer"])
    # a card button for the deleted user now says so
    gone = await tap(tg, "admin", me, how, "« Card")
    assert "no longer exists" in gone["text"]


async def test_mfa_enrolment_shows_qr_once_and_needs_a_code(tg) -> None:
    me = private("viewer")
    group = await tg.say("viewer", "/mfa", group=True)
    assert "private chat" in group["text"]
    mark = tg.sb.mark()
    await tg.sb.send_user_message(me, me, "/mfa", bot_id=tg.bot_id)
    await tg.sb.wait_for_message(chat_id=me, after=mark)
    photo = await tg.sb.wait_for_message(lambda m: "photo" in m, chat_id=me, after=mark)
    assert photo.get("has_protected_content") is True
    seed = photo["caption"].rsplit(" ", 1)[1]
    assert not (await svc.card(tg.services, "user_viewer")).mfa == "on"
    wrong = await tg.say("viewer", "/mfa 000000")
    assert "does not match" in wrong["text"]
    ok = await tg.say("viewer", f"/mfa {pyotp.TOTP(seed).now()}")
    assert "is on" in ok["text"]
    assert (await svc.card(tg.services, "user_viewer")).mfa == "on"
    texts = [m.get("text") or m.get("caption") or "" for m in tg.sb.sent()]
    assert sum(seed in t for t in texts) == 1


async def test_audit_filters_pages_and_csv(tg) -> None:
    await svc.set_role(tg.services, svc.CLI, "user_viewer", "operator")
    msg = await tg.say("admin", "/audit user=user_viewer")
    assert "user.role" in msg["text"] and "user viewer" not in msg["text"]
    me = private("admin")
    mark = await tg.press("admin", me, msg, token_for(msg, "CSV"))
    doc = await tg.sb.wait_for_message(lambda m: "document" in m, chat_id=me, after=mark)
    assert doc["document"]["file_name"].endswith(".csv")
    period = await tap(tg, "admin", me, msg, "Period: last 7 days")
    assert "last 30 days" in period["text"]


async def test_secrets_appear_once_and_never_in_logs_or_audit(tg) -> None:
    import logging

    from piyasa import logs

    root = logging.getLogger()
    old = root.level
    attached = logs.RING in root.handlers  # setup_logging put it there: leave it
    root.addHandler(logs.RING)
    root.setLevel(logging.DEBUG)
    logs.RING.lines.clear()
    me = private("admin")
    try:
        totp = await auth.enroll_totp(tg.services, tg.user_ids["admin"])
        await auth.grant_elevation(tg.services, tg.user_ids["admin"])
        card = await tg.say("admin", "/users operator")
        card = await tap(tg, "admin", me, card, "👤 user_operator")
        confirm = await tap(tg, "admin", me, card, "New API key")
        key_msg = await tap_new(tg, "admin", me, confirm, "Yes")
        key = key_msg["text"].split("\n")[1].strip()
        assert key.startswith("pk_") and key_msg.get("has_protected_content") is True
        card = await tg.say("admin", "/users operator")
        card = await tap(tg, "admin", me, card, "👤 user_operator")
        confirm = await tap(tg, "admin", me, card, "Reset password")
        temp_msg = await tap_new(tg, "admin", me, confirm, "Yes")
        temp = temp_msg["text"].split("\n")[1].strip()
        await tg.say("operator", "/mfa")
        photo = await tg.sb.wait_for_message(lambda m: "photo" in m, chat_id=private("operator"))
        seed = photo["caption"].rsplit(" ", 1)[1]
        await tg.say("operator", f"/password {temp} a-new-long-passphrase")
    finally:
        if not attached:
            root.removeHandler(logs.RING)
        root.setLevel(old)
    assert (await passwords.check_login(tg.services, "user_operator", "a-new-long-passphrase")).ok
    secrets = {"key": key, "temp": temp, "seed": seed, "totp": totp, "new": "a-new-long-passphrase"}
    shown = [m.get("text") or m.get("caption") or "" for m in tg.sb.sent()]
    for name, value in secrets.items():
        assert sum(value in text for text in shown) <= 1, name  # once, in its own message
        assert value not in "\n".join(logs.RING.lines), name
    rows = await audit.recent(tg.services, 1000)
    dumped = "\n".join(f"{r.params} {r.detail} {r.target} {r.action}" for r in rows)
    assert all(value not in dumped for value in secrets.values())
    # the /password message holding two passwords was deleted from the chat at once
    assert all(
        "a-new-long" not in (m.get("text") or "")
        for m in tg.sb.messages(private("operator"), tg.bot_id)
    )
