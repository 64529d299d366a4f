"""/backup and the restore wizard on Slack (Block Kit, modals, chat.update progress,
files upload), end to end on SQLite: data → backup → changes → restore → equal."""

from __future__ import annotations

import pyotp

from chatops import i18n
from piyasa.admin import auth
from piyasa.backup.service import backup_service
from tests.backup.conftest import add_rows, count
from tests.backup_chat.conftest import table_rows
from tests.chatops.slack_server import dm_of, slack_text
from tests.chatops.test_role_sweep import expected_refusal
from tests.users.helpers import slack_answer, slack_tap, slack_token, slack_upload

ADMIN, OPERATOR = "U0ADMIN", "U0OPERATOR"


def progress_posts(server, title: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Channel messages the progress lines went to, as they read now (after chat.update)."""
    return [m for m in server.messages.values() if (m.get("text") or "").startswith(title)]


async def test_backup_now_progress_and_download_on_slack(bslack, slack_server) -> None:
    _, ack, _ = await bslack.slash("U0VIEWER", "backup")
    assert "No backups yet" in slack_text(ack) and "Daily" in slack_text(ack)
    _, ack, _ = await bslack.slash(OPERATOR, "backup")
    card = await slack_tap(bslack, slack_server, OPERATOR, ack, "Backup now")
    assert "Backup stored and verified" in slack_text(card) and "MB/s" in slack_text(card)
    assert card.get("replace_original") is True
    (progress,) = progress_posts(slack_server, "💾 Backup now")
    assert "Done — 100%" in progress["text"]  # the posted line was updated to the end
    (info,) = await backup_service(bslack.services).list()
    sent = await slack_tap(bslack, slack_server, OPERATOR, card, "Download")
    assert "sent privately" in slack_text(sent)
    upload = await slack_upload(slack_server, ".pbk")
    assert upload["filename"] == info.id and upload["size"] == info.size_bytes
    assert upload["channel"] == dm_of(OPERATOR)  # never into the channel


async def test_restore_wizard_on_slack_end_to_end(bslack, slack_server) -> None:
    s = bslack.services
    seed = await auth.enroll_totp(s, s.extras["people"]["admin"])
    svc = backup_service(s)
    info = await svc.create()
    at_backup = await table_rows(s)
    await add_rows(s, "after", 10)

    _, ack, _ = await bslack.slash(OPERATOR, f"restore {info.id}")
    assert expected_refusal("operator", "slack") in slack_text(ack)
    _, card, _ = await bslack.slash(ADMIN, f"backup {info.id}")
    _, url = await bslack.press(ADMIN, slack_token(card, "Restore"))
    (asked,) = await slack_server.wait_response(url)
    assert "authenticator" in slack_text(asked)
    await bslack.slash(ADMIN, f"stepup {pyotp.TOTP(seed).now()}", channel=dm_of(ADMIN))
    review = (await slack_server.wait_response(url, count=2))[-1]  # the parked press, resumed
    assert "What happens" in slack_text(review) and info.schema_revision in slack_text(review)

    _, url = await bslack.press(ADMIN, slack_token(review, "Continue"))
    confirm = (await slack_server.wait_response(url))[-1]
    assert "send the word RESTORE" in slack_text(confirm)
    wrong = await slack_answer(bslack, slack_server, ADMIN, "Restore", url)
    assert "That was not RESTORE" in str(wrong["errors"])  # under the modal's input
    assert await count(s, "settings") == 35
    done = await slack_answer(bslack, slack_server, ADMIN, "RESTORE", url)
    assert "Restored:" in slack_text(done), slack_text(done)
    safety = [b for b in await svc.list() if b.kind == "safety"]
    assert len(safety) == 1 and safety[0].id in slack_text(done)
    assert "Done — 100%" in progress_posts(slack_server, "♻️ Restoring")[0]["text"]
    assert await table_rows(s) == at_backup


async def test_restore_without_authenticator_is_refused_on_slack(bslack, slack_server) -> None:
    info = await backup_service(bslack.services).create()
    _, card, _ = await bslack.slash(ADMIN, f"backup {info.id}")
    refused = await slack_tap(bslack, slack_server, ADMIN, card, "Restore")
    assert i18n.t("en", "stepup.not_enrolled") in slack_text(refused)
    _, ack, _ = await bslack.slash(ADMIN, f"restore {info.id}")
    assert i18n.t("en", "stepup.not_enrolled") in slack_text(ack)


async def test_restore_options_on_slack(bslack, slack_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On Slack: skip the safety backup (warned twice) and give the passphrase of an
    archive made by another installation, in the modal (never in the channel)."""
    from piyasa.backup.service import BackupService
    from tests.backup.conftest import make_services

    s = bslack.services
    seed = await auth.enroll_totp(s, s.extras["people"]["admin"])
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
    await add_rows(s, "after", 5)
    await bslack.slash(ADMIN, f"stepup {pyotp.TOTP(seed).now()}", channel=dm_of(ADMIN))
    _, review, _ = await bslack.slash(ADMIN, f"restore {info.id}")
    off = await slack_tap(bslack, slack_server, ADMIN, review, "Skip the safety backup")
    assert "CANNOT be brought back" in slack_text(off)
    _, url = await bslack.press(ADMIN, slack_token(off, "Give the backup passphrase"))
    asked = (await slack_server.wait_response(url))[-1]
    assert "Send the backup passphrase" in slack_text(asked)
    wrong = await slack_answer(bslack, slack_server, ADMIN, "WXYZ-0000", url)
    assert "does not decrypt" in str(wrong)
    assert await count(s, "settings") == 30
    confirm = await slack_answer(bslack, slack_server, ADMIN, "ABCD-EFGH-IJKL", url)
    assert "given ✓" in slack_text(confirm) and "NO — the current data" in slack_text(confirm)
    done = await slack_answer(bslack, slack_server, ADMIN, "RESTORE", url)
    assert "No safety backup was taken" in slack_text(done)
    assert [b.kind for b in await svc.list()] == ["manual"]
    assert await table_rows(s) == at_backup
    everything = str(slack_server.messages) + str(slack_server.responses)
    assert "ABCD-EFGH-IJKL" not in everything
