"""The audit spool: rows the database could not take, kept 0600 in the data dir, replayed
in order and only once, bounded with a clear log line."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta

import pytest

from piyasa.admin import audit, audit_spool
from piyasa.db.models import AuditEntry
from piyasa.services import Services


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        actor=f"telegram:{i}",
        actor_user_id=None,
        surface="telegram",
        action="whoami",
        target=None,
        params=audit.mask_params({"n": i, "password": "hunter2"}),
        result="ok",
        detail=None,
    )


async def test_spool_is_private_replayed_in_order_once(services: Services) -> None:
    for i in range(5):
        assert audit_spool.append(services, _entry(i))
    path = audit_spool.spool_path(services)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "hunter2" not in path.read_text()
    # a replay that committed but crashed before removing its file is run again
    leftover = path.with_name(audit_spool.SPOOL_NAME + ".replay-crashed")
    leftover.write_text(path.read_text())
    assert await audit_spool.replay(services) == 5
    assert not audit_spool.pending(services)
    assert await audit_spool.replay(services) == 0
    rows = list(reversed(await audit.recent(services, limit=10)))
    assert [r.actor for r in rows] == [f"telegram:{i}" for i in range(5)]
    assert rows[0].params["password"] == audit.MASK


async def test_spool_bound_drops_with_one_clear_log_line(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(audit_spool, "SPOOL_MAX_BYTES", 1000)
    caplog.set_level(logging.ERROR, logger="piyasa.admin.audit_spool")
    kept = [audit_spool.append(services, _entry(i)) for i in range(20)]
    assert kept[0] and not kept[-1]
    full = [r for r in caplog.records if "audit spool full" in r.getMessage()]
    assert len(full) == 1 and str(audit_spool.spool_path(services)) in full[0].getMessage()
    assert await audit_spool.replay(services) == kept.count(True)
