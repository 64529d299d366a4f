"""``PIYASA_DISK_QUOTA_BYTES``: a data dir nearly at its quota is "disk nearly full" for the
host health probe, ``piyasa check`` and ``/diagnose`` (KB ``system-disk-full``), on a
disk that has plenty of room; a malformed quota is refused with the variable named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from piyasa.admin.health.diskspace import QUOTA_VAR, data_dir_space, parse_quota
from piyasa.admin.health.service import HealthService
from piyasa.admin.setup.checks import machine_checks
from piyasa.bench._common import throwaway_services
from piyasa.cli import main
from piyasa.config import ConfigError, load_settings

QUOTA, FILL = 20_000_000, 19_600_000  # a filler file leaves at most 2 % of the quota free


def test_parse_quota() -> None:
    assert parse_quota(None) is None and parse_quota(" ") is None
    assert parse_quota("1048576") == 1 << 20
    assert parse_quota("20G") == parse_quota("20GiB") == parse_quota("20gb") == 20 << 30
    assert parse_quota("1.5M") == 3 << 19
    for bad in ("abc", "0", "-5", "12X", "inf"):
        with pytest.raises(ConfigError, match=QUOTA_VAR):
            parse_quota(bad)


def test_space_counts_the_data_dir_against_the_quota(tmp_path: Path) -> None:
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "b1").write_bytes(b"x" * 600_000)
    (tmp_path / "piyasa.log").write_bytes(b"y" * 400_000)
    settings = load_settings({"PIYASA_DATA_DIR": str(tmp_path), QUOTA_VAR: "2000000"})
    space = data_dir_space(settings)
    assert space.quota == 2_000_000 and space.used >= 1_000_000
    assert space.free == 2_000_000 - space.used and 45 < space.free_percent <= 50
    no_quota = data_dir_space(load_settings({"PIYASA_DATA_DIR": str(tmp_path)}))
    assert no_quota.quota is None and no_quota.used is None and no_quota.free > space.free


async def test_host_probe_and_check_read_the_quota() -> None:
    extra = {QUOTA_VAR: str(QUOTA)}
    async with throwaway_services("", "piyasa-quota-", extra=extra) as services:
        data = Path(services.settings.data_dir)
        (data / "filler.bin").write_bytes(b"\0" * FILL)
        snap = await HealthService(services, record_stop=False).run_all_now()
        host = snap.components["host"]
        d = host.details
        assert d["disk_quota_bytes"] == QUOTA and d["disk_used_bytes"] >= FILL
        assert d["disk_free_percent"] <= 2.0 and d["disk_state"] == "critical"
        assert host.state.value == "critical" and "disk free" in host.summary
        disk = next(c for c in machine_checks(services.settings) if c.name == "disk")
        assert disk.state.value == "critical" and "quota" in disk.summary
        assert QUOTA_VAR in disk.fix
        (data / "filler.bin").unlink()  # room again (the database is far below 18 MB)
        snap = await HealthService(services, record_stop=False).run_all_now()
        assert snap.components["host"].details["disk_state"] == "healthy"


async def test_malformed_quota_is_refused_by_name() -> None:
    async with throwaway_services("", "piyasa-quota-", extra={QUOTA_VAR: "lots"}) as services:
        with pytest.raises(ConfigError, match=QUOTA_VAR):
            HealthService(services, record_stop=False)
        disk = next(c for c in machine_checks(services.settings) if c.name == "disk")
        assert disk.state.value == "critical" and QUOTA_VAR in disk.summary


def test_diagnose_names_disk_full_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "filler.bin").write_bytes(b"\0" * FILL)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(data))  # the process's configuration
    monkeypatch.setenv(QUOTA_VAR, str(QUOTA))
    assert main(["diagnose", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    first = out["issues"][0]
    assert first["entry"] == "system-disk-full" and first["severity"] == "critical", out
    assert "health" in first["sources"] and any("disk free" in e for e in first["evidence"])
