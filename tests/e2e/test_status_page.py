"""Headless Chromium (Debian's `chromium`) loads the status page; screenshots are kept.

Artifacts: test-artifacts/status-page-phone.png and test-artifacts/status-page-desktop.png.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from chatops.web.server import make_web_app, start_web
from piyasa.admin.health import HealthService, State, Thresholds, Transition
from piyasa.config import Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.services import Services
from tests.e2e.chromium import ARTIFACTS, require_chromium, run_chromium

pytestmark = pytest.mark.e2e


@pytest.fixture
async def status_url(settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    health = HealthService(services, thresholds=Thresholds(probe_timeout_s=1.0))
    now = datetime.now(UTC)
    await health.history.record(  # some history so the bars and incidents have content
        [
            Transition("database", State.HEALTHY, None, now - timedelta(days=40)),
            Transition(
                "database",
                State.CRITICAL,
                State.HEALTHY,
                now - timedelta(days=3),
                "postgresql: unreachable (ConnectionRefusedError)",
            ),
            Transition(
                "database",
                State.HEALTHY,
                State.CRITICAL,
                now - timedelta(days=3) + timedelta(minutes=12),
            ),
        ]
    )
    services.extras["health"] = health
    await health.start()
    runner: web.AppRunner | None = None
    try:
        runner, port = await start_web(make_web_app(services), "127.0.0.1", 0)
        yield f"http://127.0.0.1:{port}"
    finally:
        if runner is not None:
            await runner.cleanup()
        await health.stop()
        await services.close()


async def test_chromium_renders_the_status_page(status_url: str) -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    phone = ARTIFACTS / "status-page-phone.png"
    desktop = ARTIFACTS / "status-page-desktop.png"
    for p in (phone, desktop):
        p.unlink(missing_ok=True)
    dom, _, _ = await asyncio.gather(
        run_chromium("--dump-dom", f"{status_url}/?lang=en"),
        run_chromium(f"--screenshot={phone}", "--window-size=390,1400", f"{status_url}/?lang=tr"),
        run_chromium(
            f"--screenshot={desktop}", "--window-size=1280,1600", f"{status_url}/?lang=en"
        ),
    )
    assert 'id="overall"' in dom
    assert "Database" in dom and "Recent incidents" in dom and "Last 90 days" in dom
    assert "postgresql: unreachable (ConnectionRefusedError)" in dom
    assert dom.count('class="critical"') >= 1  # the outage day in the database's bars
    for shot in (phone, desktop):
        assert shot.stat().st_size > 5_000  # a real rendered image, not an empty file
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
