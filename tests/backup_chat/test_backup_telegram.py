"""/backup on Telegram: the schedule and list, Backup now with progress and figures,
Verify, Test restore, Download (and when it is too big), Delete with a typed confirmation,
stale and forged buttons, and the schedule editor with localized validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops import i18n
from chatops.commands.backup import common
from piyasa.backup.service import backup_service
from tests.backup_chat.helpers import progress_messages, tap_until, type_until
from tests.chatops.harness import buttons, wait_answer
from tests.chatops.test_role_sweep import expected_refusal
from tests.users.helpers import private, tap, token_for


def read(path: Path) -> bytes:
    return path.read_bytes()


async def test_backup_now_progress_card_verify_test_restore_download(btg) -> None:
    me = private("operator")
    empty = await btg.say("viewer", "/backup")
    assert "No backups yet" in empty["text"] and "Daily: next" in empty["text"]
    assert "keep 7 daily, 4 weekly, 12 monthly" in empty["text"]
    over = await btg.say("operator", "/backup")
    card = await tap_until(btg, "operator", over, "Backup now", "Backup stored and verified")
    assert card["message_id"] == over["message_id"]  # the result replaces the pressed screen
    assert "MB/s" in card["text"] and "rows in" in card["text"] and "KB" in card["text"]
    (progress,) = progress_messages(btg, me, "💾 Backup now")
    assert progress["text"].endswith("Done — 100%")  # one message, edited to the end
    (info,) = await backup_service(btg.services).list()
    assert info.id in card["text"] and "settings" in card["text"] and "25" in card["text"]

    verified = await tap_until(btg, "operator", card, "Verify", "Verified: checksum")
    tested = await tap_until(btg, "operator", verified, "Test restore", "Test restore passed")
    assert "Test-restored: ✓" in tested["text"] and "Verified: ✓" in tested["text"]
    assert (await backup_service(btg.services).get(info.id)).test_restored_at is not None

    doc = await tap_until(btg, "operator", tested, "Download", info.id)
    while "document" not in doc:
        doc = await btg.sb.wait_for_message(lambda m: "document" in m, chat_id=me, edits=False)
    stored = btg.sb.world.files[doc["document"]["file_id"]].data
    path = await backup_service(btg.services).open_archive(info.id)
    assert doc["document"]["file_name"] == info.id and stored == read(path)

    listing = await btg.say("viewer", "/backup")
    assert "1 backups, newest first" in listing["text"] and "✓🧪" in listing["text"]


async def test_download_too_big_for_telegram_says_so_and_gives_the_shell_command(
    btg, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = await backup_service(btg.services).create()
    monkeypatch.setitem(common.DOWNLOAD_MAX, "telegram", 1024)  # below this archive's size
    card = await btg.say("operator", f"/backup {info.id}")
    sent_before = len(btg.sb.calls("sendDocument"))
    said = await tap(btg, "operator", private("operator"), card, "Download")
    assert "Telegram lets bots send files up to 1.0 KB" in said["text"]
    assert f"piyasa backup download {info.id}" in said["text"]
    assert len(btg.sb.calls("sendDocument")) == sent_before


async def test_delete_needs_delete_typed_exactly_then_stale_and_forged_buttons_refused(
    btg,
) -> None:
    svc = backup_service(btg.services)
    info = await svc.create()
    me = private("admin")
    card = await btg.say("admin", f"/backup {info.id}")
    old_card = await btg.say("admin", f"/backup {info.id}")
    ask = await tap(btg, "admin", me, card, "Delete")
    assert "send the word DELETE" in ask["text"]
    wrong = await type_until(btg, "admin", "delete", "That was not DELETE")
    assert "nothing was deleted" in wrong["text"]
    assert [b.id for b in await svc.list()] == [info.id]
    done = await type_until(btg, "admin", "DELETE", "deleted")
    assert f"Backup {info.id} deleted." in done["text"] and "No backups yet" in done["text"]
    assert await svc.list() == []
    # a card rendered before the delete: its buttons find nothing and say so
    stale = await tap(btg, "admin", me, old_card, "Verify")
    assert f"There is no backup {info.id}" in stale["text"]
    # a button token nobody issued: refused, nothing runs
    qid = await btg.sb.press_button(
        me, me, old_card["message_id"], "forged-token-0000", forge=True, bot_id=btg.bot_id
    )
    assert (await wait_answer(btg.sb, qid))["text"] == i18n.t("en", "refuse.button")


async def test_schedule_editor_validates_in_the_readers_language(btg) -> None:
    svc = backup_service(btg.services)
    me = private("admin")
    over = await btg.say("admin", "/backup")
    sched = await tap(btg, "admin", me, over, "Schedule")
    ask = await tap(btg, "admin", me, sched, "Daily")
    assert "Now: 03:00" in ask["text"]
    bad = await type_until(btg, "admin", "25:00", "is not a valid time")
    assert "“25:00” is not a valid time for the daily backup" in bad["text"]
    assert svc.schedule_status().times["daily"] == "03:00"
    saved = await type_until(btg, "admin", "04:30", "Daily: saved")
    assert "(04:30)" in saved["text"]
    ask = await tap(btg, "admin", me, saved, "Monthly")
    saved = await type_until(btg, "admin", "1 05:00", "Monthly: saved")
    ask = await tap(btg, "admin", me, saved, "Timezone")
    await type_until(btg, "admin", "Mars/Olympus", "is not a timezone name")
    saved = await tap_until(btg, "admin", ask, "Europe/Istanbul", "Timezone: saved")
    ask = await tap(btg, "admin", me, saved, "Retention")
    await type_until(btg, "admin", "7 4", "Send three whole numbers")
    saved = await type_until(btg, "admin", "5 3 10", "Retention: saved")
    assert "keep 5 daily, 3 weekly, 10 monthly" in saved["text"]
    st = svc.schedule_status()
    assert st.times == {"daily": "04:30", "monthly": "1 05:00"} and st.timezone == "Europe/Istanbul"
    assert st.retention == {"daily": 5, "weekly": 3, "monthly": 10}
    assert set(st.next_runs) == {"daily", "monthly"}
    # in Turkish: the same refusal in Turkish, nothing changed
    await btg.say("admin", "/lang tr")
    over = await btg.say("admin", "/backup")
    sched = await tap(btg, "admin", me, over, "Zamanlama")
    await tap(btg, "admin", me, sched, "Haftalık")
    bad = await type_until(btg, "admin", "pzt 9", "geçerli bir zaman değil")
    assert "“pzt 9”, weekly yedek için" in bad["text"]
    assert "weekly" not in svc.schedule_status().times


async def test_operator_is_refused_delete_and_the_schedule_editor(btg) -> None:
    """The buttons are on the operator's screens too; pressing them is refused by role,
    nothing is deleted and the schedule is unchanged."""
    svc = backup_service(btg.services)
    info = await svc.create()
    me = private("operator")
    denied = expected_refusal("operator", "telegram")
    card = await btg.say("operator", f"/backup {info.id}")
    over = await btg.say("operator", "/backup")
    for message, label in ((card, "Delete"), (card, "Restore"), (over, "Schedule")):
        qid = await btg.sb.press_button(
            me, me, message["message_id"], token_for(message, label), bot_id=btg.bot_id
        )
        assert (await wait_answer(btg.sb, qid))["text"] == denied[:200], label
    assert [b.id for b in await svc.list()] == [info.id]
    assert svc.schedule_status().times == {"daily": "03:00"}


async def test_list_is_newest_first_and_paginated_with_the_rules_keeping_each(btg) -> None:
    svc = backup_service(btg.services)
    for _ in range(6):
        await svc.create()
    made = await svc.list()  # newest first (same-second backups: the service's order)
    assert len(made) == 6
    me = private("viewer")
    page1 = await btg.say("viewer", "/backup")
    assert "6 backups, newest first" in page1["text"] and "1/2" in str(buttons(page1))
    cards = [label for label, _ in buttons(page1) if label.startswith("📦")]
    assert len(cards) == 5 and "Manual" in page1["text"]  # kept by the manual rule
    page2 = await tap(btg, "viewer", me, page1, "Next")
    assert len([label for label, _ in buttons(page2) if label.startswith("📦")]) == 1
    oldest = await tap(btg, "viewer", me, page2, "📦")
    assert made[-1].id in oldest["text"]
    page1 = await btg.say("viewer", "/backup")  # the first one turned into page 2
    newest = await tap(btg, "viewer", me, page1, cards[0])
    assert made[0].id in newest["text"]
