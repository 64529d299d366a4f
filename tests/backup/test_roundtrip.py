"""Data → backup → changes → restore: every table equal row by row to backup time."""

from __future__ import annotations

from pathlib import Path

import pytest

from piyasa.backup.service import BackupError, BackupService
from piyasa.db.models import Setting
from tests.backup.conftest import add_rows, count, every_row, make_services, s3_settings


async def _change(services) -> None:
    await add_rows(services, "after", 10)
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, "before.3")
        row.value = {"changed": True}
        await session.delete(await session.get(Setting, "before.4"))


async def test_round_trip_restores_every_row(live, svc: BackupService) -> None:
    at_backup = await every_row(live)
    steps: list[tuple[float, str]] = []

    async def progress(fraction: float, key: str) -> None:
        steps.append((fraction, key))

    info = await svc.create(progress=progress)
    assert info.kind == "manual" and info.verified_at is not None
    assert info.rows["settings"] == 25 and info.schema_revision
    assert [b.id for b in await svc.list()] == [info.id]
    assert steps[-1] == (1.0, "backup.step.done")

    await _change(live)
    assert await every_row(live) != at_backup

    safety = await svc.restore(info.id, actor="test")
    assert await every_row(live) == at_backup
    assert safety is not None and safety.kind == "safety" and safety.rows["settings"] == 34

    # the safety backup brings the changes back: nothing is lost by restoring
    await svc.restore(safety.id, actor="test", safety=False)
    assert await count(live, "settings") == 34


async def test_round_trip_through_s3(backup_db_url: str, tmp_path: Path, moto_s3: str) -> None:
    services = make_services(backup_db_url, tmp_path / "data", **s3_settings(moto_s3))
    try:
        await add_rows(services, "before", 12)
        at_backup = await every_row(services)
        svc = BackupService(services)
        info = await svc.create("daily")
        assert info.storage == "s3"
        assert not any((tmp_path / "data" / "backups").glob("*.pbk"))  # stored remotely only
        await _change(services)
        await svc.test_restore(info.id)
        await svc.restore(info.id, actor="test")
        assert await every_row(services) == at_backup
        listed = await svc.list()
        assert {b.kind for b in listed} == {"daily", "safety"}
        await svc.delete(info.id)
        assert [b.kind for b in await svc.list()] == ["safety"]
    finally:
        await services.close()


async def test_test_restore_counts_rows_and_marks_the_backup(live, svc: BackupService) -> None:
    info = await svc.create()
    checked = await svc.test_restore(info.id)
    assert checked.test_restored_at is not None
    assert (await svc.get(info.id)).test_restored_at == checked.test_restored_at


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
async def test_corrupt_archive_refused_at_verify_and_restore(
    live_sqlite, svc_sqlite, damage
) -> None:
    live, svc = live_sqlite, svc_sqlite
    info = await svc.create()
    path = svc.storage.root / info.id
    if damage == "flip":
        _flip(path, path.stat().st_size // 2)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size - 40])
    else:
        path.write_bytes(path.read_bytes() + b"x")
    before = await every_row(live)
    with pytest.raises(BackupError) as exc:
        await svc.verify(info.id)
    assert exc.value.key == "backup.corrupt"
    await add_rows(live, "later", 2)
    before = await every_row(live)
    with pytest.raises(BackupError) as exc:
        await svc.restore(info.id, actor="test", safety=False)
    assert exc.value.key == "backup.corrupt"
    assert await every_row(live) == before  # nothing replaced


async def test_wrong_key_and_passphrase(live_sqlite, svc_sqlite, tmp_path: Path) -> None:
    live, svc = live_sqlite, svc_sqlite
    phrase = await svc.new_passphrase()  # shown once, sealed in the data dir's config
    env_file = (live.settings.data_dir / ".env").read_text()
    assert "PIYASA_BACKUP_PASSPHRASE=enc:v1:" in env_file and phrase not in env_file
    info = await svc.create()
    other = make_services(
        live.settings.database_url, tmp_path / "other", PIYASA_BACKUP_DIR=str(svc.storage.root)
    )
    try:
        stranger = BackupService(other)  # another data dir: another secret key
        with pytest.raises(BackupError) as exc:
            await stranger.verify(info.id)
        assert exc.value.key == "backup.wrong_key"
        stranger.passphrase = phrase  # the data dir is lost: the passphrase alone opens it
        assert (await stranger.verify(info.id)).verified_at is not None
    finally:
        await other.close()


async def test_partial_archives_are_never_listed(svc_sqlite) -> None:
    svc = svc_sqlite
    (svc.storage.root / "piyasa-20260101T000000Z-daily.pbk.partial").write_bytes(b"PBK1")
    (svc.storage.root / "piyasa-20260101T000000Z-manual.pbk").write_bytes(b"PBK1")  # no manifest
    assert await svc.list() == []
    with pytest.raises(BackupError) as exc:
        await svc.get("piyasa-20260101T000000Z-manual.pbk")
    assert exc.value.key == "backup.unknown"
