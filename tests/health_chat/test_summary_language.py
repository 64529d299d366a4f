"""Issue 12: health summaries are said in the chat's language: no English summary line in a
Turkish chat (checked against the English catalogue), and the English catalogue says
exactly what the probes' English summaries say."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatops import i18n
from chatops.health_words import summary_text
from piyasa.admin.health import HealthService, Thresholds
from piyasa.admin.health.words import EN, RAW, phrase, render
from piyasa.services import Services
from tests.chatops.conftest import start_telegram
from tests.chatops.harness import seed_people

SLOW_ROUNDS = Thresholds(interval_s=3600.0, probe_timeout_s=1.0)


def english_words() -> set[str]:
    """Words of the English phrase catalogue that no Turkish phrase uses."""

    def words(texts: list[str]) -> set[str]:
        plain = [re.sub(r"\{[^}]*\}", " ", t) for t in texts]
        return {w.lower() for t in plain for w in re.findall(r"[A-Za-z]{3,}", t)}

    en = [
        v
        for k, v in i18n.catalog("en").items()
        if k.startswith(("health.phrase.", "health.summary."))
    ]
    tr = [
        v
        for k, v in i18n.catalog("tr").items()
        if k.startswith(("health.phrase.", "health.summary."))
    ]
    return words(en) - words(tr) - {"sqlite", "postgresql"}


@pytest.fixture
async def world(services: Services) -> AsyncIterator[Any]:
    people = await seed_people(services)
    # the real probes, run when the test says (run_all_now): with 0.2 s rounds a
    # round between the reply and the check changed the figures it compares (CI, loaded)
    health = HealthService(services, thresholds=SLOW_ROUNDS, record_stop=False)
    services.extras["health"] = health
    await health.start()
    async for world in start_telegram(services):
        world.user_ids = people
        world.health = health  # type: ignore[attr-defined]
        try:
            yield world
        finally:
            await health.stop()


async def test_health_in_a_turkish_chat_has_no_english_summary(world) -> None:
    await world.say("admin", "/lang tr")
    await world.health.run_all_now()
    reply = await world.say("admin", "/health")
    lines = [ln for ln in reply["text"].splitlines() if " — " in ln]
    snap = world.health.snapshot()
    assert len(lines) == len(snap.components) >= 5
    forbidden = english_words()
    assert {"pool", "memory", "free", "workers", "breaker"} <= forbidden
    for line in lines:
        said = line.split(" — ", 1)[1]
        english = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", said)} & forbidden
        assert not english, f"English in a Turkish chat: {line!r}"
    for reading in snap.components.values():
        assert summary_text("tr", reading) in reply["text"]
        if reading.summary and summary_text("en", reading) != summary_text("tr", reading):
            assert reading.summary not in reply["text"], reading.summary
    assert "İşlemci %" in reply["text"] and "havuz " in reply["text"]


SAMPLE = {
    "type": "sqlite",
    "who": "host:41:ab12",
    "versions": "0.1.0, 0.2.0",
    "ms": "3",
    "error": "ConnectionError",
    "used": 1,
    "capacity": 5,
    "n": "7",
    "active": 2,
    "total": 3,
    "bad": 1,
    "attempts": 40,
    "window": "60",
    "names": "site",
    "state": "half_open",
    "kind": "timeout",
    "by": "probe",
    "s": "2",
}


@pytest.mark.parametrize("key", sorted(set(EN) - {RAW}))
def test_every_phrase_is_in_both_catalogues_and_english_matches_the_probes(key: str) -> None:
    params = {name: SAMPLE[name] for name in re.findall(r"\{(\w+)\}", EN[key])}
    p = phrase(key, **params)
    assert i18n.catalog("en")[f"health.phrase.{key}"] == EN[key]  # chat en == stored summary
    from piyasa.admin.health import Reading, State

    reading = Reading.said("x", State.HEALTHY, [p])
    assert summary_text("en", reading) == render([p]) == reading.summary
    assert summary_text("tr", reading) != reading.summary or key == "latency" or key == "db"
