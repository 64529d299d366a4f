"""The restore wizard on Telegram, end to end with real data on SQLite and PostgreSQL:
data → backup → changes → restore from chat → every table as at backup time. With its
refusals: lower roles, no step-up, a wrongly typed word, a backup that fails verify."""

from __future__ import annotations

import pyotp
import pytest

from chatops import i18n
from piyasa.admin import auth
from piyasa.backup.service import backup_service
from tests.backup.conftest import add_rows, count
from tests.backup_chat.conftest import table_rows
from tests.backup_chat.helpers import progress_messages, tap_until, type_until
from tests.chatops.harness import wait_answer
from tests.chatops.test_role_sweep import expected_refusal
from tests.users.helpers import private, token_for

NOT_ENROLLED = i18n.t("en", "stepup.not_enrolled")


@pytest.fixture
def world_url(backup_db_url: str) -> str:  # SQLite and PostgreSQL, a database of its own
    return backup_db_url


async def _press(tg, role: str, message: dict, label: str) -> str:  # type: ignore[no-untyped-def]
    me = private(role)
    return await tg.sb.press_button(
        me, me, message["message_id"], token_for(message, label), bot_id=tg.bot_id
    )


async def test_restore_wizard_end_to_end(btg) -> None:
    s = btg.services
    me = private("admin")
    seed = await auth.enroll_totp(s, btg.user_ids["admin"])
    svc = backup_service(s)
    info = await svc.create()
    at_backup = await table_rows(s)
    await add_rows(s, "after", 10)  # what happened since the backup
    assert await table_rows(s) != at_backup

    # lower roles: refused, by command and by the card's button
    refused = await btg.say("operator", f"/restore {info.id}")
    assert refused["text"] == "⛔ " + expected_refusal("operator", "telegram")
    card = await btg.say("admin", f"/backup {info.id}")

    # the admin: step-up first
    qid = await _press(btg, "admin", card, "Restore")
    assert "authenticator" in (await wait_answer(btg.sb, qid))["text"]
    review = await type_until(btg, "admin", pyotp.TOTP(seed).now(), "What happens")
    text = review["text"]
    assert "the current data is replaced" in text and "safety backup" in text
    assert "fleet pauses" in text and info.schema_revision in text
    assert "Piyasa version" in text and "settings" in text and "25" in text

    confirm = await tap_until(btg, "admin", review, "Continue", "send the word RESTORE")
    assert progress_messages(btg, me, "✓ Verify")[-1]["text"].endswith("Done — 100%")

    wrong = await type_until(btg, "admin", "restore", "That was not RESTORE")
    assert "nothing was restored" in wrong["text"]
    assert await count(s, "settings") == 35  # unchanged
    del confirm

    done = await type_until(btg, "admin", "RESTORE", "Restored:")
    assert "The fleet has resumed" in done["text"]
    (restoring,) = progress_messages(btg, me, "♻️ Restoring")
    assert restoring["text"].endswith("Done — 100%")
    safety = [b for b in await svc.list() if b.kind == "safety"]
    assert len(safety) == 1 and safety[0].rows["settings"] == 35
    assert f"Safety backup of the data before the restore: {safety[0].id}" in done["text"]
    assert await table_rows(s) == at_backup  # every table, row by row
