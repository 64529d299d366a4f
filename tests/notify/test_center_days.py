"""`/alerts` groups incidents by the reader's local day (their `/notify tz`, else
PIYASA_TIMEZONE): Today / Yesterday / Earlier, in English and Turkish, on Telegram and
Slack, on both databases; the UTC date is not the reader's day."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from chatops import alert_views
from piyasa.admin.identity import ROLE_LEVEL
from piyasa.admin.notify import store as notify_store
from tests.chatops.conftest import slack_server  # noqa: F401
from tests.chatops.harness import PEOPLE
from tests.notify import center_world
from tests.notify.center_world import SURFACES, center, text_of
from tests.notify.conftest import critical

NOW = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
AT = {
    "database": datetime(2026, 12, 1, 22, 0, tzinfo=UTC),  # Istanbul: today 01:00; UTC: yesterday
    "redis": datetime(2026, 12, 1, 20, 0, tzinfo=UTC),  # Istanbul: yesterday 23:00
    "telegram": datetime(2026, 11, 30, 21, 30, tzinfo=UTC),  # Istanbul: yesterday; UTC: earlier
    "llm": datetime(2026, 11, 30, 20, 0, tzinfo=UTC),  # Istanbul: 30 Nov 23:00, earlier
}

world = center_world.world  # the fixture


def headings(text: str) -> list[tuple[str, list[int]]]:
    """The center's day headings with the incident ids under each, in order."""

    out: list[tuple[str, list[int]]] = []
    for line in text.splitlines():
        word = line.strip(" *_")
        if word in ("Today", "Yesterday", "Earlier"):
            out.append((word, []))
        elif out and (m := re.search(r"#(\d+) ", line)):
            out[-1][1].append(int(m.group(1)))
    return out


@pytest.mark.parametrize("surface", SURFACES)
async def test_days_are_the_readers_local_days(world, surface) -> None:
    ids = {}
    for key, at in sorted(AT.items(), key=lambda kv: kv[1]):
        world.clock.at = at
        ids[key] = (await world.notify.ingest(critical(key))).id
    world.clock.at = NOW
    db, redis, tg, llm = (ids[k] for k in ("database", "redis", "telegram", "llm"))
    if surface == "telegram":
        await world.tg.say("viewer", "/notify tz Europe/Istanbul")
    else:
        await world.slack.slash(PEOPLE["viewer"][1], "notify tz Europe/Istanbul")
    local = text_of(surface, await center(world, surface, "viewer"))
    assert headings(local) == [
        ("Today", [db]),
        ("Yesterday", [redis, tg]),
        ("Earlier", [llm]),
    ], local
    assert "2 hr. ago" in local or "2 hours ago" in local  # relative times, not dates
    # no preference: the deployment's timezone (UTC by default, here)
    utc = text_of(surface, await center(world, surface, "operator"))
    assert headings(utc) == [("Yesterday", [db, redis]), ("Earlier", [tg, llm])], utc
    world.services.settings = dataclasses.replace(
        world.services.settings, timezone="Europe/Istanbul"
    )
    assert headings(text_of(surface, await center(world, surface, "operator"))) == headings(local)


def test_the_day_headings_in_turkish_by_local_day() -> None:

    def item(nid: int, at: datetime) -> notify_store.Item:
        return notify_store.Item(
            nid, f"fp{nid}", "health", "warning", "alerts.health.warning.title",
            None, {"component": "redis"}, {}, "open", at, at, 1, None, None, None, None,
        )  # fmt: skip

    items = [item(i, at) for i, at in enumerate(sorted(AT.values(), reverse=True), 1)]
    c = notify_store.Center(items, unread=0, pending=0)
    view = alert_views.center_view(
        "tr", c, NOW, level=ROLE_LEVEL["viewer"], state="all", tz="Europe/Istanbul"
    )
    bold = [b.text for b in view.blocks if getattr(b, "style", None) == "bold"]
    assert bold == ["Bugün", "Dün", "Daha önce"]
    view = alert_views.center_view("tr", c, NOW, level=1, state="all", tz="UTC")
    assert [b.text for b in view.blocks if getattr(b, "style", None) == "bold"] == [
        "Dün",
        "Daha önce",
    ]


def test_the_deployment_timezone_is_checked_when_read(tmp_path) -> None:
    from piyasa.config import ConfigError, load_settings

    env = {"PIYASA_DATA_DIR": str(tmp_path)}
    assert load_settings(env).timezone == "UTC"
    assert load_settings({**env, "PIYASA_TIMEZONE": "Europe/Istanbul"}).timezone == (
        "Europe/Istanbul"
    )
    with pytest.raises(ConfigError, match="PIYASA_TIMEZONE='Mars/Base' is not a known IANA"):
        load_settings({**env, "PIYASA_TIMEZONE": "Mars/Base"})
