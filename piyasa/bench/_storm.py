"""The alert storm of ``piyasa bench alerts`` and the ledger that scores what came out.

:func:`storm` lays out ``n`` events over ``seconds`` from ``bots`` bots and five sources
(health, fleet, llm, delivery, system), reproducibly (seeded):

- a PostgreSQL outage from 30 % to 70 % of the run: ``health:database`` critical, checked
  again every second, resolved at the end, and 1,000 events it causes (half critical,
  half warning, labelled ``depends=database``) that inhibition must mute;
- five flapping health checks (firing and recovered in turn, 200 events each);
- critical incidents: 20 bots' tokens revoked, the LLM key refused (each event repeated);
- the rest: repeated warnings and info (429 storms, quota errors, breakers, resources,
  chat migrations) over the bots, which dedupe and grouping must fold.

:class:`Ledger` watches the deliveries the notification service makes (it wraps the
service's senders and channel factory, observing the real ones) and scores them: the
first delivery of each critical incident per destination against the time its first
event was emitted, and a notice delivered twice to one destination in a row.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from piyasa.admin.notify.events import Event

SOURCES = ("health", "fleet", "llm", "delivery", "system")
FLAPPING = ("redis", "llm", "telegram", "slack", "disk")
DEPENDENT = 1000
FLAP_EVENTS = 200  # per flapping check
REVOKED_BOTS = 20
CRITICAL_REPEATS = 3


TITLES = {  # kind -> (catalogue key, parameters); chatops/locales/<lang>/alerts.json
    "check": ("alerts.health.critical.title", {}),
    "store": ("alerts.fleet.crashed.title", {}),
    "token": ("alerts.fleet.disabled.title", {"detail": "token revoked"}),
    "auth": ("alerts.llm.error.title", {"kind": "auth", "error": "401"}),
    "429": ("alerts.fleet.storm.title", {"n": 40, "minutes": 10}),
    "quota": ("alerts.llm.error.title", {"kind": "quota", "error": "429"}),
    "breaker": ("alerts.fleet.breaker.title", {}),
    "migrated": ("alerts.fleet.migrated.title", {"detail": "supergroup"}),
    "cpu": ("alerts.host.cpu.title", {"n": 95}),
    "memory": ("alerts.host.memory.title", {"n": 85}),
    "disk_free": ("alerts.host.disk.title", {"n": 8}),
    "error_rate": (
        "alerts.fleet.error_rate.title",
        {"n": 6, "minutes": 10, "failed": 54, "attempts": 900},
    ),
}


def _ev(source: str, key: str, severity: str, **labels: str) -> Event:
    kind = key.split(":")[0] if ":" in key else key if key in TITLES else "check"
    title, params = TITLES[kind]
    who = labels.get("bot") or labels.get("component") or key
    params = {**params, "component": who, "worker": who, "name": who}
    return Event(source, key, severity, title, params, labels=labels)  # type: ignore[arg-type]


def storm(n: int, bots: int, seconds: float, seed: int = 13) -> list[tuple[float, Event]]:
    """``n`` events as (seconds from the start, event), in time order. Needs ``n`` of at
    least ~2,500 for the full mix; smaller runs scale the fixed parts down."""
    rng = random.Random(seed)
    scale = min(1.0, n / 10_000)
    out: list[tuple[float, Event]] = []
    t0, t1 = 0.30 * seconds, 0.70 * seconds
    # the outage: the database check every second, its recovery, the events it causes
    db = _ev("health", "database", "critical", component="database")
    at = t0
    while at < t1:
        out.append((at, db))
        at += 1.0
    out.append((t1, Event(**{**db.__dict__, "resolved": True})))
    dependent = max(10, int(DEPENDENT * scale))
    for i in range(dependent):
        bot = f"bot-{i % bots}"
        sev = "critical" if i % 2 else "warning"
        at = t0 + 0.01 + (t1 - t0 - 0.02) * i / dependent
        out.append((at, _ev("fleet", f"store:{bot}", sev, bot=bot, depends="database")))
    # flapping checks: firing and recovered in turn
    for check in FLAPPING:
        times = sorted(rng.uniform(0, seconds) for _ in range(max(4, int(FLAP_EVENTS * scale))))
        event = _ev("health", check, "warning", component=check)
        for k, at in enumerate(times):
            out.append((at, event if k % 2 == 0 else Event(**{**event.__dict__, "resolved": True})))
    # critical incidents, each event repeated
    criticals = [
        _ev("fleet", f"token:bot-{i}", "critical", bot=f"bot-{i}")
        for i in range(max(2, int(REVOKED_BOTS * scale)))
    ]
    criticals.append(_ev("llm", "auth", "critical"))
    for event in criticals:
        start = rng.uniform(0, seconds * 0.9)
        for k in range(CRITICAL_REPEATS):
            out.append((min(seconds, start + k * rng.uniform(0.5, 3.0)), event))
    # the rest: repeated warnings and info over the bots and the resources
    kinds = [
        ("fleet", "429", "warning"),
        ("llm", "quota", "warning"),
        ("delivery", "breaker", "warning"),
        ("delivery", "migrated", "info"),
    ]
    resources = ("cpu", "memory", "disk_free", "error_rate")
    while len(out) < n:
        at = rng.uniform(0, seconds)
        if rng.random() < 0.1:
            res = rng.choice(resources)
            out.append((at, _ev("system", res, "warning", component=res)))
            continue
        source, what, sev = rng.choice(kinds)
        bot = f"bot-{rng.randrange(bots)}"
        out.append((at, _ev(source, f"{what}:{bot}", sev, bot=bot)))
    out.sort(key=lambda p: p[0])
    return out[:n] if len(out) > n else out


@dataclass
class Ledger:
    """What the notification service delivered (its ``observers`` hook: called once the
    far end accepted a delivery), destination by destination.

    ``emitted``: fingerprint -> ``perf_counter`` of its first firing event; ``first``:
    (destination, fingerprint) -> ``perf_counter`` of the first delivery carrying that
    incident; ``told``: destination -> {(incident id, "firing"|"resolved")}.
    ``duplicates``: a delivery row sent again, or an incident told firing again to a
    destination with no recovery told in between (a re-alert)."""

    emitted: dict[str, float] = field(default_factory=dict)
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    last_kind: dict[tuple[str, int], str] = field(default_factory=dict)
    told: dict[str, set[tuple[int, str]]] = field(default_factory=dict)
    sent_keys: set[str] = field(default_factory=set)
    duplicates: int = 0
    deliveries: int = 0

    def on_emit(self, event: Event) -> None:
        if not event.resolved:
            self.emitted.setdefault(event.fingerprint, time.perf_counter())

    def observe(self, row: Any, items: list[Any]) -> None:
        """``NotifyService.observers`` hook: ``row`` a NotifyDelivery, ``items`` its Items."""
        now = time.perf_counter()
        if row.kind != "notice":
            return
        self.deliveries += 1
        if row.dedupe_key in self.sent_keys:
            self.duplicates += 1
        self.sent_keys.add(row.dedupe_key)
        for it in items:
            state = "resolved" if it.state == "resolved" else "firing"
            key = (row.destination, it.id)
            if state == "firing" and self.last_kind.get(key) == "firing":
                self.duplicates += 1
            self.last_kind[key] = state
            self.told.setdefault(row.destination, set()).add((it.id, state))
            self.first.setdefault((row.destination, it.fingerprint), now)

    def critical_latencies_ms(self, critical: set[str], destinations: list[str]) -> list[float]:
        """Emit -> first delivery, per critical incident and destination, in ms."""
        out = []
        for fp in critical:
            for dest in destinations:
                at = self.first.get((dest, fp))
                if at is not None and fp in self.emitted:
                    out.append((at - self.emitted[fp]) * 1000)
        return out
