"""Fleet bots spread across instances by lease, on real PostgreSQL and Redis: batched
renewals (one statement / script per round), a fair share when an instance joins, a dead
instance's bots taken over, and no bot worked by two instances at any moment.

Short protocol values (TTL 1.2 s, renewal every 0.3 s) so the tests take seconds."""

from __future__ import annotations

import asyncio

from piyasa.cluster.lease import FREE_LEFT, LeaseBackend, LocalLease
from piyasa.cluster.spread import BotSpreader, fair_share, lease_name
from tests.waiting import finishes, until

FAST = {"ttl_s": 1.2, "renew_s": 0.3, "stop_margin_s": 0.4, "graceful_s": 2.0}
BOTS = list(range(1, 11))


class Work:
    """Which instance works (polls) which bot now; counts any bot worked twice."""

    def __init__(self) -> None:
        self.by_bot: dict[int, str] = {}
        self.overlaps = 0
        self.alive: set[str] = set()

    def spreader(self, backend: LeaseBackend, who: str) -> BotSpreader:
        async def gain(bot: int) -> None:
            if bot in self.by_bot:
                self.overlaps += 1
            self.by_bot[bot] = who

        async def loss(bot: int, graceful: bool) -> None:
            if graceful:
                await asyncio.sleep(0.2)  # the long poll ends
            if self.by_bot.get(bot) == who:
                del self.by_bot[bot]

        async def live() -> int:
            return len(self.alive)

        self.alive.add(who)
        return BotSpreader(
            backend, who, bots=lambda: BOTS, live=live, on_gain=gain, on_loss=loss, **FAST
        )

    def count(self, who: str) -> int:
        return sum(1 for w in self.by_bot.values() if w == who)


def test_fair_share() -> None:
    assert [fair_share(10, n) for n in (0, 1, 2, 3, 4)] == [10, 10, 5, 4, 3]
    assert fair_share(0, 2) == 0


async def test_hold_many_is_one_batch(backends: list[LeaseBackend]) -> None:
    a, b, _ = backends
    names = [lease_name(i) for i in BOTS]
    got = await a.hold_many("A", [], names, 4, 5.0)
    assert got.pop(FREE_LEFT) == 6  # six free ones left to others
    assert len(got) == 4 and all(e >= 1 for e in got.values())
    # B asks for everything: only the six free ones are granted, never A's
    got_b = await b.hold_many("B", [], names, 10, 5.0)
    assert got_b.pop(FREE_LEFT) == 0
    assert set(got_b) == set(names) - set(got)
    # A renews its four and asks for more: nothing is free
    renewed = await a.hold_many("A", sorted(got), names, 10, 5.0)
    assert renewed.pop(FREE_LEFT) == 0 and set(renewed) == set(got)
    await a.release_many("A", sorted(got)[:2])
    taken = await b.hold_many("B", sorted(got_b), names, 10, 5.0)
    taken.pop(FREE_LEFT)
    assert set(taken) == set(got_b) | set(sorted(got)[:2])
    # a lease A no longer holds is missing from A's renewal
    again = await a.hold_many("A", sorted(got), [], 0, 5.0)
    again.pop(FREE_LEFT)
    assert set(again) == set(sorted(got)[2:])


async def test_join_splits_and_death_is_taken_over(backends: list[LeaseBackend]) -> None:
    work = Work()
    a = work.spreader(backends[0], "A")
    await a.start()
    assert work.count("A") == len(BOTS)  # alone: every bot at once
    b = work.spreader(backends[1], "B")
    await b.start()
    try:
        await until(
            lambda: work.count("A") == 5 and work.count("B") == 5,
            "the bots split 5/5",
            interval=0.05,
        )
        c = work.spreader(backends[2], "C")
        await c.start()
        await until(
            lambda: sorted(work.count(w) for w in "ABC") == [2, 4, 4],
            "the bots split 4/4/2",
            interval=0.05,
        )
        assert len(work.by_bot) == len(BOTS)
        # A dies (SIGKILL): no renewal, no release; its work ends with it
        await a.halt()
        work.alive.discard("A")
        for bot in [k for k, w in work.by_bot.items() if w == "A"]:
            del work.by_bot[bot]
        await until(
            lambda: work.count("B") + work.count("C") == len(BOTS),
            "B and C to own every bot",
            interval=0.05,
        )
        assert sorted(work.count(w) for w in "BC") == [5, 5]
        assert work.overlaps == 0
        await c.stop()
        work.alive.discard("C")
        await until(lambda: work.count("B") == len(BOTS), "B to own every bot", interval=0.05)
        assert work.overlaps == 0
    finally:
        await b.stop()
        await a.stop()


async def test_owner_that_cannot_renew_stops_first(backends: list[LeaseBackend]) -> None:
    """A stalled store: the owner stops its bots before anyone else can take them."""
    work = Work()
    a = work.spreader(backends[0], "A")
    await a.start()
    b = work.spreader(backends[1], "B")
    await b.start()
    try:
        await until(lambda: work.count("B") == 5, "the split", interval=0.05)

        class Away:
            kind = "away"

            async def hold_many(self, *_a: object) -> dict[str, int]:
                raise ConnectionError("partitioned")

            async def release_many(self, *_a: object) -> None:
                raise ConnectionError("partitioned")

        a.backend = Away()  # type: ignore[assignment]
        await until(lambda: work.count("A") == 0, "A to stop its bots", interval=0.02)
        await until(lambda: work.count("B") == len(BOTS), "B to take them", interval=0.05)
        assert work.overlaps == 0
    finally:
        await b.stop()
        await a.halt()


async def test_local_lease_owns_every_bot() -> None:
    work = Work()
    s = work.spreader(LocalLease(), "only")
    await s.start()
    try:
        assert work.count("only") == len(BOTS) and s.owned_ids() == set(BOTS)
    finally:
        await s.stop()


async def test_halt_ends_when_it_comes_as_a_renewal_returns() -> None:
    """The CI hang at 900 s (2026-12-01): halt() cancelled the loop in the very iteration
    its renewal came back; Python 3.11's ``asyncio.wait_for`` returned the renewal instead
    of the cancel, the loop renewed on and halt() waited forever."""
    loop = asyncio.get_running_loop()

    class Held:
        kind = "held"

        def __init__(self) -> None:
            self.pending: asyncio.Future[dict[str, int]] | None = None

        async def hold_many(self, _h: str, keep: list[str], take: list[str], *_a: object):
            names = {n: 1 for n in keep or take}
            if not keep:  # the first round answers at once
                return {**names, FREE_LEFT: 0}
            self.pending = loop.create_future()
            await self.pending
            return {**names, FREE_LEFT: 0}

        async def release_many(self, *_a: object) -> None:
            return None

    work = Work()
    backend = Held()
    s = work.spreader(backend, "A")  # type: ignore[arg-type]
    await s.start()
    await until(lambda: backend.pending is not None, "a renewal to be under way")
    assert backend.pending is not None
    backend.pending.set_result({})
    await finishes(s.halt(), "halt to end")
