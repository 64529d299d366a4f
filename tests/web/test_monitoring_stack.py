"""The compose stack and the Grafana dashboard, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema
(vendored: tests/fixtures/compose_spec.json, see the README next to it); the dashboard
is loaded and every metric its panels query must be one the code registers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import yaml
from prometheus_client import CollectorRegistry

from piyasa.admin.health import Reading, Snapshot, State
from piyasa.admin.health.metrics import HealthCollector
from piyasa.config import load_settings
from piyasa.runtime.metrics import FleetMetrics

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((FIXTURES / "compose_spec.json").read_text())
    # "$schema" there is the 2019-09 draft, spelt with http:// and a trailing "#".
    assert "2019-09" in schema["$schema"]
    validator_cls = jsonschema.Draft201909Validator
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(_compose()), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The validator really rejects a broken file (so the check above can fail).
    broken = _compose()
    broken["services"]["piyasa"]["healthcheck"]["retries"] = "many"
    assert list(validator_cls(schema).iter_errors(broken))


def test_compose_wires_piyasa_to_its_dependencies() -> None:
    services = _compose()["services"]
    assert set(services) == {"piyasa", "postgres", "redis", "prometheus", "grafana"}
    app = services["piyasa"]
    command = " ".join(app["command"])
    assert command.index("piyasa migrate") < command.index("piyasa up")  # migrations first
    check = " ".join(app["healthcheck"]["test"])
    assert "/healthz" in check and "/readyz" in check
    env = app["environment"]
    assert "@postgres:5432/" in env["PIYASA_DATABASE_URL"]
    assert env["PIYASA_REDIS_URL"].startswith("redis://redis:6379")
    assert env["PIYASA_HTTP_HOST"] == "0.0.0.0"
    for dep in ("postgres", "redis"):
        assert app["depends_on"][dep]["condition"] == "service_healthy"
        assert services[dep]["healthcheck"]["test"]
    # The URLs are ones Piyasa's own settings accept.
    resolved = {
        k: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(v)) for k, v in env.items() if v is not None
    }
    settings = load_settings({**resolved, "PIYASA_DATA_DIR": "/tmp/piyasa-compose-check"})
    assert settings.database_url.startswith("postgresql+asyncpg://piyasa:")
    assert settings.http_port == 8080


def test_prometheus_scrapes_metrics_and_grafana_is_provisioned() -> None:
    compose = _compose()["services"]
    prom_cfg = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = prom_cfg["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["piyasa:8080"]
    assert any("deploy/prometheus/prometheus.yml" in v for v in compose["prometheus"]["volumes"])
    ds = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert ds["url"] == "http://prometheus:9090" and ds["type"] == "prometheus"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/piyasa.yml").read_text()
    )["providers"][0]
    mounts = compose["grafana"]["volumes"]
    assert any(m.endswith(":" + provider["options"]["path"] + ":ro") for m in mounts)
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/piyasa-fleet.json").read_text())
    picked = dashboard["templating"]["list"][0]["current"]["value"]
    assert picked == ds["uid"]


def test_dockerfile_runs_migrate_then_up_with_health_checks() -> None:
    text = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in text.splitlines() if line.startswith("CMD"))
    assert cmd.index("piyasa migrate") < cmd.index("piyasa up")
    assert "/healthz" in text and "/readyz" in text
    assert "COPY migrations" in text and "PIYASA_HTTP_HOST=0.0.0.0" in text


def _registered_names() -> set[str]:
    """Every series name the code exposes on /metrics (fleet registry + health)."""
    health = SimpleNamespace(
        snapshot=lambda: Snapshot(State.HEALTHY, {"x": Reading("x", State.HEALTHY)}, None),
        transition_counts={("x", "healthy"): 1},
        pending_records=0,
    )
    registries = [FleetMetrics().registry, CollectorRegistry()]
    registries[1].register(HealthCollector(health))  # type: ignore[arg-type]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def test_dashboard_queries_only_metrics_the_code_registers() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/piyasa-fleet.json").read_text())
    assert dashboard["uid"] == "piyasa-fleet" and dashboard["panels"]
    registered = _registered_names()
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used.update(re.findall(r"\bpiyasa_[a-z0-9_]+", target["expr"]))
    unknown = used - registered
    assert not unknown, f"dashboard queries metrics nobody registers: {sorted(unknown)}"
    # The panels: messages, errors, LLM latency and cost, outbox, breakers.
    for needed in (
        "piyasa_fleet_messages_total",
        "piyasa_telegram_errors_total",
        "piyasa_llm_latency_seconds_bucket",
        "piyasa_llm_cost_usd_total",
        "piyasa_outbox_depth",
        "piyasa_breaker_state",
    ):
        assert needed in used, needed
