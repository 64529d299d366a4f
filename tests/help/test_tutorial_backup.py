"""The tutorial "take and test a backup" on Telegram: no archive, not test-restored →
refused with what is missing; each real backup action ticks its step."""

from __future__ import annotations

from piyasa.backup.service import backup_service
from tests.backup_chat.conftest import (  # noqa: F401
    bservices,
    btg,
    migrated_sqlite,
    world_url,
)
from tests.users.helpers import private, tap

CHECK = "✅ Done — check"


async def test_telegram_backup_tutorial_checks_the_archives(btg) -> None:  # noqa: F811
    me, svc = private("operator"), backup_service(btg.services)
    step1 = await btg.say("operator", "/docs tutorial backup")
    assert "Step 1/5 ●○○○○" in step1["text"]
    step2 = await tap(btg, "operator", me, step1, CHECK)
    none = await tap(btg, "operator", me, step2, CHECK)
    assert (
        "Step 2/5" in none["text"] and "No backup yet. Press Backup now in /backup" in none["text"]
    )
    info = await svc.create()  # what Backup now does (it verifies as it stores)
    step3 = await tap(btg, "operator", me, none, CHECK)
    assert "Step 3/5 ●●●○○" in step3["text"]
    step4 = await tap(btg, "operator", me, step3, CHECK)
    untested = await tap(btg, "operator", me, step4, CHECK)
    assert "No backup has been test-restored yet" in untested["text"]
    await svc.test_restore(info.id)  # what Test restore does
    step5 = await tap(btg, "operator", me, untested, CHECK)
    assert "Step 5/5 ●●●●●" in step5["text"]
    done = await tap(btg, "operator", me, step5, CHECK)
    assert "you have a backup you know restores" in done["text"]
