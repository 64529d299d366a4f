"""Issue 12 item 11: last seen moves on chat use (Telegram and Slack), at most one write
per user per minute, shows on /users and the card (Babel, tr/en), and /users sorts by it
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from piyasa.admin import activity
from piyasa.admin import users as svc
from tests.chatops.harness import buttons
from tests.users.helpers import private, tap

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The activity clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(services) -> Clock:  # type: ignore[no-untyped-def]
    clock = Clock()
    services.extras["activity"] = activity.Activity(clock=clock)
    return clock


@pytest.fixture
def user_writes(services) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every UPDATE of the users table the database receives."""
    seen: list[str] = []

    def listen(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE USERS"):
            seen.append(statement)

    event.listen(services.engine.sync_engine, "before_cursor_execute", listen)
    yield seen
    event.remove(services.engine.sync_engine, "before_cursor_execute", listen)


async def test_chat_use_moves_last_seen_at_most_once_a_minute(tg, clock, user_writes) -> None:
    before = await svc.card(tg.services, "user_operator")
    assert before.last_seen_at is None and before.active_days == 0
    for _ in range(3):
        await tg.say("operator", "/whoami")
    card = await svc.card(tg.services, "user_operator")
    assert card.last_seen_at == START and card.active_days == 1
    assert len(user_writes) == 1  # three requests within a minute: one write
    clock.now = START + timedelta(seconds=59)
    await tg.say("operator", "/whoami")
    assert len(user_writes) == 1
    clock.now = START + timedelta(seconds=61)
    await tg.say("operator", "/whoami")
    assert len(user_writes) == 2
    card = await svc.card(tg.services, "user_operator")
    assert card.last_seen_at == clock.now and card.active_days == 1  # same UTC day
    clock.now = START + timedelta(days=1)
    await tg.say("operator", "/whoami")
    assert (await svc.card(tg.services, "user_operator")).active_days == 2
    # someone who never wrote to the bot stays "never"
    assert (await svc.card(tg.services, "user_viewer")).last_seen_at is None


async def test_a_second_process_does_not_write_within_the_minute(services, clock) -> None:  # type: ignore[no-untyped-def]
    uid = (await svc.add_user(services, "twice", "viewer")).id
    assert await activity.seen(services, uid)
    other = {"activity": activity.Activity(clock=clock)}  # another instance's memory
    services.extras, mine = other, services.extras
    try:
        clock.now = START + timedelta(seconds=30)
        await activity.seen(services, uid)  # tries: its memory is empty, the row says no
    finally:
        services.extras = mine
    assert (await svc.card(services, uid)).last_seen_at == START


async def test_users_sorts_by_last_seen_and_the_card_says_it_in_turkish(tg, clock) -> None:
    clock.now = datetime.now(UTC) - timedelta(minutes=2)
    await tg.say("viewer", "/whoami")
    clock.now = datetime.now(UTC) - timedelta(minutes=1)
    await tg.say("operator", "/whoami")
    clock.now = datetime.now(UTC)
    me = private("admin")
    msg = await tg.say("admin", "/users")
    assert "Last seen" in msg["text"]
    while "Sort: last seen" not in [label for label, _ in buttons(msg)]:
        msg = await tap(tg, "admin", me, msg, "Sort:")
    rows = msg["text"].split("\n")[3:7]  # title, header, rule, then the rows
    order = [
        name
        for row in rows
        for name in ("user_admin", "user_operator", "user_viewer")
        if name in row
    ]
    assert order == ["user_admin", "user_operator", "user_viewer"], msg["text"]
    assert "never" in rows[3]  # user_unlinked (or whoever is left) was never seen
    page = await svc.query_users(tg.services, sort="last_seen")
    assert [r.username for r in page.rows][:3] == ["user_admin", "user_operator", "user_viewer"]

    await tg.say("admin", "/lang tr")
    clock.now = datetime.now(UTC)
    tr = await tg.say("admin", "/users")
    card = await tap(tg, "admin", me, tr, "👤 user_viewer")
    assert "Sohbette son görülme: 2 dk. önce" in card["text"], card["text"]
    assert "Sohbette etkin gün: 1" in card["text"]
    await tg.say("admin", "/lang en")
    msg = await tg.say("admin", "/users")
    card = await tap(tg, "admin", me, msg, "👤 user_viewer")
    assert "Last seen in chat: 2 min. ago" in card["text"], card["text"]


async def test_slack_use_counts_too(slack, clock) -> None:  # type: ignore[no-untyped-def]
    await slack.slash("U0OPERATOR", "whoami")
    assert (await svc.card(slack.services, "user_operator")).last_seen_at == START
