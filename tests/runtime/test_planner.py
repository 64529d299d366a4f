"""Planner rules, without a database: the rules are pure functions of the roster and time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from piyasa.runtime.planner import PendingReply, Planner
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster, is_active


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def bot(i: int, **kw) -> BotInfo:
    base = dict(
        id=i,
        telegram_id=100 + i,
        username=f"b{i}",
        display_name=f"B{i}",
        persona={"name": f"B{i}", "topics": ["fx"]},
        active_hours="00:00-24:00",
        timezone="UTC",
        hourly_limit=1000,
        enabled=True,
    )
    base.update(kw)
    return BotInfo(**base)


def roster(bots: list[BotInfo], chats: int = 1, topics=("bist", "fx")) -> Roster:
    r = Roster()
    for b in bots:
        r.bots[b.id] = b
    for j in range(chats):
        r.chats[j + 1] = ChatInfo(j + 1, -100 - j, f"c{j}", "supergroup", list(topics), True)
        r.members[j + 1] = [b.id for b in bots]
    return r


NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def planner(r: Roster, clock: Clock | None = None, **kw) -> Planner:
    return Planner(r, clock=clock or Clock(), wall=lambda: NOON, **kw)


def test_active_hours_are_read_in_the_bots_own_timezone():
    # 12:00 UTC is 15:00 in Istanbul and 07:00 in New York.
    assert is_active("09:00-18:00", "Europe/Istanbul", NOON)
    assert not is_active("09:00-18:00", "America/New_York", NOON)
    assert is_active("22:00-08:00", "America/New_York", NOON)  # wraps midnight
    p = planner(
        roster([bot(1, timezone="America/New_York", active_hours="09:00-18:00"), bot(2), bot(3)])
    )
    decided = {d.bot.id for d in p.plan(1e6, 1.0, 50)}
    assert 1 not in decided and decided == {2, 3}


def test_no_bot_speaks_twice_in_a_row_and_disabled_bots_stay_silent():
    clock = Clock()
    p = planner(roster([bot(1), bot(2), bot(3, enabled=False)]), clock, max_pending_per_chat=10**6)
    seq = []
    for _ in range(40):
        seq += [d.bot.id for d in p.plan(1e6, 1.0, 50)]
        clock.t += 1.0
    assert len(seq) > 20 and 3 not in seq
    assert all(a != b for a, b in itertools.pairwise(seq))


def test_hourly_limit_per_bot():
    clock = Clock()
    p = planner(
        roster([bot(1, hourly_limit=3), bot(2, hourly_limit=3)]), clock, max_pending_per_chat=99
    )
    seq = []
    for _ in range(100):
        seq += [d.bot.id for d in p.plan(1e6, 1.0, 50)]
        clock.t += 5.0
    assert seq.count(1) == 3 and seq.count(2) == 3
    clock.t += 3600
    assert p.plan(1e6, 1.0, 50)  # a new hour, new budget


def test_fleet_budget_follows_max_msgs_per_min_and_scale_factor():
    clock = Clock()
    p = planner(roster([bot(i) for i in range(6)], chats=5), clock, max_pending_per_chat=10**6)
    counts = []
    for per_min, scale in ((60, 1.0), (60, 0.5), (60, 0.0)):
        n = 0
        for _ in range(600):  # ten minutes, in 1 s steps
            n += len(p.plan(per_min, scale, 100))
            clock.t += 1.0
        counts.append(n)
    assert 590 <= counts[0] <= 610
    assert 295 <= counts[1] <= 310
    assert counts[2] <= 1


def test_replies_to_humans_come_first_and_go_to_the_addressed_bot():
    p = planner(roster([bot(1), bot(2), bot(3)]))
    p.add_reply(PendingReply(7, 1, 3, 55, "Ayşe", "@b3 dolar ne olur?"))
    decisions = p.plan(1e6, 1.0, 50, topic_hint=lambda _t: "fx")
    assert decisions[0].reply is not None and decisions[0].bot.id == 3
    assert decisions[0].topic == "fx"
    assert p.replies == []


def test_pending_cap_keeps_the_outbox_bounded_when_nothing_is_delivered():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)]), clock, max_pending_per_chat=4)
    total = 0
    for _ in range(100):
        total += len(p.plan(1e6, 1.0, 50))
        clock.t += 10
    assert total == 4
    p.settle(1)
    assert len(p.plan(1e6, 1.0, 50)) == 1


def test_decisions_are_paced_to_the_group_limit():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)]), clock, max_pending_per_chat=10**6)
    n = 0
    for _ in range(600):  # 60 s in 0.1 s steps
        n += len(p.plan(1e6, 1.0, 50))
        clock.t += 0.1
    assert n == 2 * 20  # 20 per bot per group per minute


def test_just_in_time_a_pair_is_decided_only_when_its_slot_opens_within_the_lead():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)]), clock, max_pending_per_chat=10**6, lead_s=0.3)
    first = p.plan(1e6, 1.0, 50)
    assert len(first) == 6  # a burst of 3 per pair: those slots are open now
    # The burst was projected at +0.3 s; the next slot of each pair opens 1 s (+ margin)
    # after that, so it is decided 0.3 s before: at +1.08, not earlier.
    clock.t += 1.0
    assert p.plan(1e6, 1.0, 50) == []
    clock.t += 0.1
    assert len(p.plan(1e6, 1.0, 50)) == 2


def test_a_chat_whose_delivery_lags_gets_no_new_chatter_until_it_catches_up():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)], chats=2), clock, max_pending_per_chat=10**6, max_lag_s=0.5)
    assert {d.chat.id for d in p.plan(1e6, 1.0, 50)} == {1, 2}
    while p.pending.get(2):
        p.settle(2)  # chat 2 delivers, chat 1 does not (e.g. 429s)
    clock.t += 2.0
    chats = {d.chat.id for d in p.plan(1e6, 1.0, 50)}
    assert chats == {2}
    while p.pending.get(1):
        p.settle(1)
    assert 1 in {d.chat.id for d in p.plan(1e6, 1.0, 50)}


def test_a_reply_borrows_from_the_budget_instead_of_waiting_for_it():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)]), clock, max_pending_per_chat=99)
    first = p.plan(6, 1.0, 50)
    assert len(first) == 1  # 6/min: the budget is one message
    assert p.plan(6, 1.0, 50) == []
    other = 2 if first[0].bot.id == 1 else 1  # not the last speaker
    p.add_reply(PendingReply(8, 1, other, 56, "Ayşe", "@b ?"))
    clock.t += 1.5  # past the pair's next slot, long before the budget's next message
    decisions = p.plan(6, 1.0, 50)
    assert [d.reply is not None for d in decisions] == [True]
    clock.t += 9.0  # the chatter that would have come now waits for the debt to be repaid
    assert p.plan(6, 1.0, 50) == []


def test_a_slow_budget_still_reaches_every_chat():
    clock = Clock()
    p = planner(roster([bot(1), bot(2)], chats=2), clock, max_pending_per_chat=10**6)
    chats = []
    for _ in range(600):  # 60 s in planner ticks of 0.1 s, 12 messages a minute
        chats += [d.chat.id for d in p.plan(12, 1.0, 50)]
        clock.t += 0.1
    assert 11 <= len(chats) <= 13
    assert abs(chats.count(1) - chats.count(2)) <= 1
