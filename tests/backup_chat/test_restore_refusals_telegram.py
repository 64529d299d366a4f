"""Restore refusals on Telegram (SQLite): no step-up without an authenticator, and a
backup whose archive fails verify is refused on Continue with the reason, nothing changed."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pyotp

from piyasa.admin import auth
from piyasa.backup.service import backup_service
from tests.backup.conftest import add_rows, count
from tests.backup_chat.helpers import type_until, wait_text
from tests.backup_chat.test_restore_telegram import NOT_ENROLLED, _press
from tests.chatops.harness import wait_answer
from tests.users.helpers import private, token_for


def damage(path: Path) -> None:
    """Flip one byte in the middle of the stored archive (a bad disk, a bad copy)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


async def test_restore_refused_without_step_up_and_for_a_corrupt_backup(btg) -> None:
    s = btg.services
    svc = backup_service(s)
    info = await svc.create()
    await add_rows(s, "after", 3)
    card = await btg.say("admin", f"/backup {info.id}")
    qid = await _press(btg, "admin", card, "Restore")  # no authenticator: no step-up
    assert (await wait_answer(btg.sb, qid))["text"] == NOT_ENROLLED
    assert await count(s, "settings") == 28

    # a damaged archive: step-up passes, Continue verifies and refuses with the reason
    seed = await auth.enroll_totp(s, btg.user_ids["admin"])
    damage(Path(await svc.open_archive(info.id)))
    qid = await _press(btg, "admin", card, "Restore")
    assert "authenticator" in (await wait_answer(btg.sb, qid))["text"]
    review = await type_until(btg, "admin", pyotp.TOTP(seed).now(), "What happens")
    mark = btg.sb.mark()
    await btg.press("admin", private("admin"), review, token_for(review, "Continue"))
    refused = await wait_text(btg, private("admin"), "cannot be restored", mark)
    assert "The archive is damaged" in refused["text"] and "Nothing was changed" in refused["text"]
    assert "RESTORE" not in refused["text"]
    assert await count(s, "settings") == 28
    assert [b.kind for b in await svc.list()] == ["manual"]  # no safety backup either


async def test_restore_while_another_backup_runs_is_refused_and_changes_nothing(btg) -> None:
    """Another process (the CLI, the scheduler) holds the backups' lock: the typed RESTORE
    is refused with the reason and the database stays as it is."""
    s = btg.services
    svc = backup_service(s)
    info = await svc.create()
    await add_rows(s, "after", 2)
    seed = await auth.enroll_totp(s, btg.user_ids["admin"])
    card = await btg.say("admin", f"/backup {info.id}")
    qid = await _press(btg, "admin", card, "Restore")
    assert "authenticator" in (await wait_answer(btg.sb, qid))["text"]
    review = await type_until(btg, "admin", pyotp.TOTP(seed).now(), "What happens")
    mark = btg.sb.mark()
    await btg.press("admin", private("admin"), review, token_for(review, "Continue"))
    await wait_text(btg, private("admin"), "send the word RESTORE", mark)
    with held_lock(svc.work_dir / ".lock"):
        refused = await type_until(btg, "admin", "RESTORE", "did not happen")
    assert "Another backup or restore is running" in refused["text"]
    assert "The current database is unchanged" in refused["text"]
    assert await count(s, "settings") == 27
    assert [b.kind for b in await svc.list()] == ["manual"]


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """The backups' lock (an flock on ``<backups>/.lock``) held as another process would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
