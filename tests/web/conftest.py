"""A web app with the status routes over a HealthService, served on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.admin.health import HealthService, Thresholds
from piyasa.services import Services


@pytest.fixture
async def health(services: Services) -> AsyncIterator[HealthService]:
    h = HealthService(services, thresholds=Thresholds(interval_s=0.2, probe_timeout_s=1.0))
    services.extras["health"] = h
    await h.start()
    yield h
    await h.stop()


@pytest.fixture
async def client(services: Services, health: HealthService) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_web_app(services))) as c:
        yield c
