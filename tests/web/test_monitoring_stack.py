"""The compose stack and the Grafana dashboard, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema
(vendored: tests/fixtures/compose_spec.json, see the README next to it) and its variables
are substituted the way `docker compose` does; the dashboard is loaded and every metric its
panels query must be one the code registers. Deployment defaults (issue 11, item 15): every
port on loopback, no default Grafana password, /metrics scraped with a required token.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from piyasa.admin.health import Reading, Snapshot, State
from piyasa.admin.health.metrics import HealthCollector
from piyasa.config import load_settings
from piyasa.runtime.metrics import FleetMetrics

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


# What an operator's .env holds (see deploy/README.md).
SAMPLE_ENV = {
    "PIYASA_METRICS_TOKEN": "m3trics-token-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "gr4f-pw",
}
_VAR = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?)([-?])([^}]*))?\}|(\w+))")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


class MissingVariable(Exception):
    """A ``${NAME:?message}`` whose variable is unset or empty: compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's substitution: ``$$``, ``$V``, ``${V}``, ``${V:-default}``, ``${V-default}``,
    ``${V:?message}``, ``${V?message}``. Raises MissingVariable naming the variable."""

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name, colon, op, arg = m.group(2) or m.group(6), m.group(3), m.group(4), m.group(5)
        value = env.get(name)
        unset = value is None or (colon == ":" and value == "")
        if op == "-":
            return arg if unset else str(value)
        if op == "?" and unset:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _VAR.sub(one, text)


def _resolved(env: Mapping[str, str]) -> dict:
    """The compose file as `docker compose config` would see it with ``env`` as .env."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return walk(_compose())


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
    services = _resolved(SAMPLE_ENV)["services"]
    assert set(services) == {"piyasa", "migrate", "postgres", "redis", "prometheus", "grafana"}
    app = services["piyasa"]
    command = " ".join(app["command"])
    assert command.index("piyasa migrate") < command.index("piyasa up")  # migrations first
    check = " ".join(app["healthcheck"]["test"])
    assert "/healthz" in check and "/readyz" in check
    env = app["environment"]
    assert "@postgres:5432/" in env["PIYASA_DATABASE_URL"]
    assert env["PIYASA_REDIS_URL"].startswith("redis://redis:6379")
    assert env["PIYASA_HTTP_HOST"] == "0.0.0.0"  # inside the container; published on loopback
    for dep in ("postgres", "redis"):
        assert app["depends_on"][dep]["condition"] == "service_healthy"
        assert services[dep]["healthcheck"]["test"]
    # The URLs are ones Piyasa's own settings accept; /metrics gets its token.
    resolved = {k: str(v) for k, v in env.items() if v is not None}
    settings = load_settings({**resolved, "PIYASA_DATA_DIR": "/tmp/piyasa-compose-check"})
    assert settings.database_url.startswith("postgresql+asyncpg://piyasa:")
    assert settings.http_port == 8080
    assert settings.extra["PIYASA_METRICS_TOKEN"] == SAMPLE_ENV["PIYASA_METRICS_TOKEN"]


def test_replicas_scale_on_one_database_after_one_migration() -> None:
    """Several instances (docs/scaling.md): migrations run once, in their own service,
    before any replica; replicas are declared and each gets its own loopback port; the
    health check gates each replica; Prometheus discovers every replica by DNS."""
    services = _resolved(SAMPLE_ENV)["services"]
    app, migrate = services["piyasa"], services["migrate"]
    assert app["deploy"]["replicas"] >= 1
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["command"] == ["piyasa", "migrate"] and migrate["restart"] == "no"
    assert (
        migrate["environment"]["PIYASA_DATABASE_URL"] == app["environment"]["PIYASA_DATABASE_URL"]
    )
    assert "container_name" not in app  # a fixed name would forbid --scale
    low, high = app["ports"][0].split(":")[1].split("-")
    assert int(high) - int(low) + 1 >= 3
    [job] = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())[
        "scrape_configs"
    ]
    assert job["dns_sd_configs"][0]["names"] == ["piyasa"]


def test_every_port_is_published_on_loopback_only() -> None:
    loopback = re.compile(r"^(127\.0\.0\.1|\[::1\]):\d+(-\d+)?:\d+(/(tcp|udp))?$")
    published = {}
    for name, service in _resolved(SAMPLE_ENV)["services"].items():
        assert "network_mode" not in service, name
        for port in service.get("ports", []):
            assert isinstance(port, str) and loopback.match(port), f"{name} publishes {port!r}"
            published[name] = port
    assert published == {
        "piyasa": "127.0.0.1:8080-8082:8080",  # one per replica (--scale piyasa=3)
        "prometheus": "127.0.0.1:9090:9090",
        "grafana": "127.0.0.1:3000:3000",
    }


def test_compose_refuses_to_start_without_its_secrets_and_has_no_default_password() -> None:
    for missing in SAMPLE_ENV:
        env = {k: v for k, v in SAMPLE_ENV.items() if k != missing}
        with pytest.raises(MissingVariable, match=missing):
            _resolved(env)
        with pytest.raises(MissingVariable, match=missing):
            _resolved({**env, missing: ""})
    grafana = _resolved(SAMPLE_ENV)["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SAMPLE_ENV["GRAFANA_ADMIN_PASSWORD"]


def test_prometheus_scrapes_metrics_with_the_required_token(tmp_path: Path) -> None:
    services = _resolved(SAMPLE_ENV)["services"]
    token = SAMPLE_ENV["PIYASA_METRICS_TOKEN"]
    prom = services["prometheus"]
    assert prom["environment"]["PIYASA_METRICS_TOKEN"] == token
    [job] = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())[
        "scrape_configs"
    ]
    auth = job["authorization"]
    assert auth["type"] == "Bearer" and "credentials" not in auth
    token_file = auth["credentials_file"]
    assert token_file.startswith("/prometheus/")  # Prometheus's own volume, writable by it
    assert any(v.endswith(":/prometheus") for v in prom["volumes"])
    # Run the entrypoint as the container would (paths moved under tmp_path): it writes the
    # token where the scrape job reads it, private, and starts Prometheus with the command.
    fake = tmp_path / "prometheus-binary"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {shlex.quote(str(tmp_path / 'args'))}\n")
    fake.chmod(0o755)
    shell, flag, script, arg0 = prom["entrypoint"]
    assert (shell, flag) == ("/bin/sh", "-c")
    script = script.replace("/bin/prometheus", str(fake)).replace("/prometheus/", f"{tmp_path}/")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PIYASA_METRICS_TOKEN": token}
    subprocess.run(["sh", "-c", script, arg0, *prom["command"]], env=env, check=True, timeout=120)
    written = tmp_path / Path(token_file).name
    assert written.read_text() == token
    assert written.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "args").read_text().split() == prom["command"]


def test_prometheus_scrapes_metrics_and_grafana_is_provisioned() -> None:
    compose = _compose()["services"]
    prom_cfg = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = prom_cfg["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    sd = job["dns_sd_configs"][0]  # every replica of the piyasa service
    assert (sd["names"], sd["port"]) == (["piyasa"], 8080)
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


def test_dockerfile_installs_pg_client_tools_not_older_than_the_compose_server() -> None:
    """PostgreSQL backups need pg_dump/pg_restore in the image, at least the server's major
    (pg_dump refuses a newer server)."""
    text = (ROOT / "Dockerfile").read_text()
    client = int(re.search(r"ARG PG_MAJOR=(\d+)", text)[1])  # type: ignore[index]
    assert "postgresql-client-${PG_MAJOR}" in text
    server = int(re.search(r"image: postgres:(\d+)", (ROOT / "docker-compose.yml").read_text())[1])  # type: ignore[index]
    assert client >= server


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
