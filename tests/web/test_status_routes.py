"""`/api/health`, `/metrics` and `/` as an operator (and a stranger) sees them."""

from __future__ import annotations

import dataclasses
import os
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from chatops.web.server import make_web_app
from piyasa.admin.health import HealthService
from piyasa.admin.health.apikeys import hash_key
from piyasa.db.models import ApiKey, User
from piyasa.services import Services


async def _make_key(services: Services, *, revoked: bool = False, locked: bool = False) -> str:
    key = "pk_" + secrets.token_urlsafe(24)
    async with services.sessions() as s:
        user = User(username="ops" + secrets.token_hex(3), role="viewer", locked=locked)
        s.add(user)
        await s.flush()
        s.add(
            ApiKey(
                user_id=user.id,
                key_hash=hash_key(key),
                prefix=key[:8],
                revoked_at=datetime.now(UTC) if revoked else None,
            )
        )
        await s.commit()
    return key


async def test_public_api_health_shows_states_only(client: TestClient, services: Services) -> None:
    resp = await client.get("/api/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] in {"healthy", "warning", "critical", "unknown"}
    assert {c["name"] for c in body["components"]} >= {"database", "redis", "host"}
    assert all(set(c) == {"name", "state"} for c in body["components"])
    raw = await resp.text()
    for leak in (os.uname().nodename, str(services.settings.data_dir), "sqlite", "version"):
        assert leak not in raw


async def test_full_view_needs_a_valid_unrevoked_key(
    client: TestClient, services: Services
) -> None:
    key = await _make_key(services)
    resp = await client.get("/api/health", headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 200
    full = await resp.json()
    db = next(c for c in full["components"] if c["name"] == "database")
    assert db["details"]["type"] in {"sqlite", "postgresql"} and db["latency_ms"] is not None
    async with services.sessions() as s:
        used = await s.scalar(select(ApiKey.last_used_at).where(ApiKey.key_hash == hash_key(key)))
    assert used is not None

    resp = await client.get("/api/health", headers={"X-API-Key": key})
    assert resp.status == 200 and "details" in (await resp.json())["components"][0]

    for bad in (
        "nope",
        await _make_key(services, revoked=True),
        await _make_key(services, locked=True),
    ):
        resp = await client.get("/api/health", headers={"X-API-Key": bad})
        assert resp.status == 401
        assert "details" not in await resp.text()


async def test_metrics_expose_health_and_can_require_a_token(
    services: Services, health: HealthService
) -> None:
    async with TestClient(TestServer(make_web_app(services))) as c:
        resp = await c.get("/metrics")
        assert resp.status == 200
        text = await resp.text()
        assert 'piyasa_health_state{component="database",state="healthy"} 1.0' in text
        assert "piyasa_health_refresh_seconds" in text
    services.settings = dataclasses.replace(
        services.settings, extra={**services.settings.extra, "PIYASA_METRICS_TOKEN": "s3cret"}
    )
    async with TestClient(TestServer(make_web_app(services))) as c:
        assert (await c.get("/metrics")).status == 401
        assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
        ok = await c.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200 and "piyasa_health_overall" in await ok.text()


async def test_status_page_in_both_languages_without_javascript(client: TestClient) -> None:
    resp = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,tr;q=0.5"})
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<html lang="en">' in page and "<script" not in page
    assert "Database" in page and "Last 90 days" in page
    assert page.count('class="bars"') >= 7
    assert 'name="viewport"' in page
    tr_page = await (await client.get("/?lang=tr", headers={"Accept-Language": "en"})).text()
    assert '<html lang="tr">' in tr_page and "Veritabanı" in tr_page and "Son 90 gün" in tr_page


async def test_status_page_shows_recorded_incidents(
    client: TestClient, health: HealthService
) -> None:
    from piyasa.admin.health import State, Transition

    # Ongoing for two minutes: past the minute a problem must hold to be an incident. A
    # component this service does not probe, so no reading of its own ends it meanwhile.
    since = datetime.now(UTC) - timedelta(minutes=2)
    await health.history.record(
        [
            Transition(
                "mailer", State.CRITICAL, State.HEALTHY, since, "unreachable (ConnectionError)"
            )
        ]
    )
    page = await (await client.get("/?lang=en")).text()
    assert "Recent incidents" in page and "unreachable (ConnectionError)" in page
    assert "ongoing" in page


async def test_without_a_health_service_only_liveness_routes_exist(services: Services) -> None:
    async with TestClient(TestServer(make_web_app(services))) as c:
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/api/health")).status == 404


async def test_metrics_include_the_fleet_registry_when_the_fleet_is_wired(
    services: Services, health: HealthService
) -> None:
    from piyasa.runtime.metrics import FleetMetrics

    class FakeFleet:  # the fleet's public surface used here: snapshot() and metrics
        metrics = FleetMetrics()

        def snapshot(self) -> dict:
            return {"running": False}

    FakeFleet.metrics.outbox_depth.set(3)
    health.set_fleet(FakeFleet())
    async with TestClient(TestServer(make_web_app(services))) as c:
        text = await (await c.get("/metrics")).text()
    assert "piyasa_outbox_depth 3.0" in text
    assert "piyasa_health_overall" in text
