"""A notification no channel took is visible as pending: on the status page and in the
center (`/alerts` counts it; `/health` adds it to its waiting line)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.admin.health import HealthService
from piyasa.admin.notify import emit
from piyasa.admin.notify import store as notify_store
from tests.health.conftest import Scripted
from tests.health_chat.conftest import FAST
from tests.notify.conftest import critical


async def test_undelivered_notifications_show_on_the_status_page(notify, clock) -> None:
    svc, sender = notify
    sender.fail = ConnectionError("telegram unreachable")
    emit(svc.services.extras, critical("database"))
    await svc.tick()
    assert (await notify_store.center(svc.services, None, clock())).pending == 1
    health = HealthService(
        svc.services, probes=[Scripted("database")], thresholds=FAST, record_stop=False
    )
    svc.services.extras["health"] = health
    await health.start()
    client = TestClient(TestServer(make_web_app(svc.services)))
    await client.start_server()
    try:
        page = await (await client.get("/?lang=en")).text()
        assert "1 notification(s) could not be delivered yet." in page
        sender.fail = None
        clock.move(60)
        await svc.tick()
        page = await (await client.get("/?lang=en")).text()
        assert "could not be delivered" not in page
    finally:
        await client.close()
        await health.stop()
