"""The restore wizard's options on Telegram (SQLite): skipping the safety backup (with its
warning, shown again above the typed word), the backup passphrase for an archive made
with another secret key, the paged backup picker, and stale presses after the end."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp

from piyasa.admin import auth
from piyasa.backup.service import BackupService, backup_service
from tests.backup.conftest import add_rows, count, make_services
from tests.backup_chat.conftest import table_rows
from tests.backup_chat.helpers import tap_until, type_until, wait_text
from tests.backup_chat.test_restore_telegram import _press
from tests.chatops.harness import wait_answer
from tests.users.helpers import private, token_for

NO_SAFETY = "the current data CANNOT be brought back"


async def _review(btg, backup_id: str) -> dict:  # type: ignore[no-untyped-def]
    """The admin (enrolled here) opens the wizard on ``backup_id`` and passes step-up."""
    seed = await auth.enroll_totp(btg.services, btg.user_ids["admin"])
    card = await btg.say("admin", f"/backup {backup_id}")
    qid = await _press(btg, "admin", card, "Restore")
    assert "authenticator" in (await wait_answer(btg.sb, qid))["text"]
    return await type_until(btg, "admin", pyotp.TOTP(seed).now(), "What happens")


async def test_restore_without_the_safety_backup(btg) -> None:
    s = btg.services
    svc = backup_service(s)
    info = await svc.create()
    at_backup = await table_rows(s)
    await add_rows(s, "after", 4)
    review = await _review(btg, info.id)
    assert "A safety backup of the current database is taken first" in review["text"]
    off = await tap_until(btg, "admin", review, "Skip the safety backup", NO_SAFETY)
    assert "Take the safety backup" in str(off.get("reply_markup"))
    confirm = await tap_until(btg, "admin", off, "Continue", "send the word RESTORE")
    assert "NO — the current data will not be kept" in confirm["text"]
    assert NO_SAFETY in confirm["text"]
    done = await type_until(btg, "admin", "RESTORE", "Restored:")
    assert "No safety backup was taken" in done["text"]
    assert [b.kind for b in await svc.list()] == ["manual"]
    assert await table_rows(s) == at_backup

    # a stale press on the finished wizard's review changes nothing
    uid = private("admin")
    qid = await btg.sb.press_button(
        uid, uid, off["message_id"], token_for(off, "Continue"), forge=True, bot_id=btg.bot_id
    )
    await wait_answer(btg.sb, qid)  # answered (the wizard is over), nothing run
    assert await count(s, "settings") == 25 and len(await svc.list()) == 1


async def test_turning_the_safety_backup_back_on_keeps_it(btg) -> None:
    s = btg.services
    svc = backup_service(s)
    info = await svc.create()
    await add_rows(s, "after", 2)
    review = await _review(btg, info.id)
    off = await tap_until(btg, "admin", review, "Skip the safety backup", NO_SAFETY)
    on = await tap_until(btg, "admin", off, "Take the safety backup", "is taken first")
    assert NO_SAFETY not in on["text"]
    await tap_until(btg, "admin", on, "Continue", "send the word RESTORE")
    done = await type_until(btg, "admin", "RESTORE", "Restored:")
    safety = [b for b in await svc.list() if b.kind == "safety"]
    assert len(safety) == 1 and safety[0].rows["settings"] == 27
    assert safety[0].id in done["text"]


async def test_restore_with_the_backup_passphrase(btg, tmp_path: Path) -> None:
    """An archive made by another installation (another secret key) with a passphrase:
    Continue is refused (wrong key, with the hint); a wrong passphrase is refused; the
    right one opens it, is shown only as "given", and the restore goes through."""
    s = btg.services
    svc = backup_service(s)
    other = make_services(
        str(s.settings.database_url),
        tmp_path / "elsewhere",
        PIYASA_BACKUP_DIR=str(svc.work_dir),
        PIYASA_BACKUP_PASSPHRASE="ABCD-EFGH-IJKL",
    )
    try:
        info = await BackupService(other).create()
    finally:
        await other.close()
    at_backup = await table_rows(s)
    await add_rows(s, "after", 3)
    review = await _review(btg, info.id)
    mark = btg.sb.mark()
    await btg.press("admin", private("admin"), review, token_for(review, "Continue"))
    refused = await wait_text(btg, private("admin"), "cannot be restored", mark)
    assert "does not decrypt" in refused["text"] and "Give the backup passphrase" in refused["text"]
    ask = await tap_until(btg, "admin", refused, "Give the backup passphrase", "Send the backup")
    assert "deleted from the chat" in ask["text"]
    wrong = await type_until(btg, "admin", "WXYZ-0000", "cannot be restored")
    assert "does not decrypt" in wrong["text"]
    assert await count(s, "settings") == 28
    confirm = await type_until(btg, "admin", "ABCD-EFGH-IJKL", "send the word RESTORE")
    assert "given ✓" in confirm["text"] and "ABCD" not in confirm["text"]
    uid = private("admin")
    state = await s.cache.get(f"dialog:telegram:{uid}:{uid}")
    assert state is not None and state["data"]["pass"]  # kept, sealed: never in clear
    assert "ABCD-EFGH-IJKL" not in json.dumps(state)
    done = await type_until(btg, "admin", "RESTORE", "Restored:")
    assert "ABCD" not in done["text"]
    assert await table_rows(s) == at_backup
    sent = " ".join(m.get("text") or "" for m in btg.sb.sent(private("admin"), btg.bot_id))
    assert "ABCD-EFGH-IJKL" not in sent


async def test_the_picker_pages_through_every_backup(btg) -> None:
    s = btg.services
    svc = backup_service(s)
    made = [await svc.create() for _ in range(9)]
    seed = await auth.enroll_totp(s, btg.user_ids["admin"])
    await btg.say("admin", "/restore")
    first = await type_until(btg, "admin", pyotp.TOTP(seed).now(), "Choose the backup")
    assert "Older ›" in str(first.get("reply_markup"))
    chat = private("admin")
    mark = await btg.press("admin", chat, first, token_for(first, "Older ›"))
    older = await btg.sb.wait_for_message(
        lambda m: "‹ Newer" in str(m.get("reply_markup")),
        chat_id=chat,
        bot_id=btg.bot_id,
        edits=True,
        after=mark,
    )
    labels = [b["text"] for row in older["reply_markup"]["inline_keyboard"] for b in row]
    assert len([x for x in labels if "·" in x]) == 1  # 9 backups, 8 a page
    assert len(made) == 9
