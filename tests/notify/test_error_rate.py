"""The fleet's message error rate (``piyasa.runtime.error_rate``) on an injected clock, and
the producer builders it and the fleet's other events go through."""

from __future__ import annotations

from chatops import i18n
from piyasa.admin.notify.producers import error_rate_event, fleet_event, llm_event
from piyasa.runtime.error_rate import MIN_ATTEMPTS, ErrorRate


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(rate: ErrorRate, ok: int, failed: int) -> list[tuple[bool, int, int]]:
    out = []
    for good in [True] * ok + [False] * failed:  # the failures last
        change = rate.record(good)
        if change is not None:
            out.append((change.firing, change.failed, change.attempts))
    return out


def test_needs_a_sample_then_fires_above_five_percent() -> None:
    rate = ErrorRate(Ticks())
    assert feed(rate, ok=10, failed=5) == []  # a third failed, but 15 attempts: no sample
    assert feed(rate, ok=MIN_ATTEMPTS - 16, failed=0) == []  # 5 of 19
    assert feed(rate, ok=1, failed=0) == [(True, 5, 20)]  # 5 of 20 = 25 %
    assert rate.describe() == {"window_s": 600.0, "failed": 5, "attempts": 20, "firing": True}


def test_exactly_five_percent_is_not_over_it() -> None:
    rate = ErrorRate(Ticks())
    assert feed(rate, ok=95, failed=5) == []
    assert feed(rate, ok=0, failed=1) == [(True, 6, 101)]


def test_hysteresis_resolves_only_under_four_percent() -> None:
    rate = ErrorRate(Ticks())
    assert feed(rate, ok=14, failed=6) == [(True, 6, 20)]  # fires as soon as 20 are in
    assert feed(rate, ok=130, failed=0) == []  # 6 of 150 = 4 %: still firing
    assert feed(rate, ok=1, failed=0) == [(False, 6, 151)]  # 3.97 %


def test_failures_age_out_of_the_ten_minute_window() -> None:
    ticks = Ticks()
    rate = ErrorRate(ticks)
    assert feed(rate, ok=15, failed=5) == [(True, 5, 20)]
    ticks.now += 300
    assert rate.check() is None and rate.counts() == (5, 20)
    ticks.now += 305  # the first attempts are now older than 600 s
    change = rate.check()
    assert change is not None and (change.firing, change.attempts) == (False, 0)
    assert rate.counts() == (0, 0)


def test_error_rate_event_reads_in_both_languages() -> None:
    event = error_rate_event(9, 120, 600, firing=True)
    assert (event.fingerprint, event.severity, event.resolved) == (
        "fleet:error_rate",
        "warning",
        False,
    )
    assert i18n.t("en", event.title_key, **event.params) == (
        "7.5 % of the fleet's messages failed over 10 min (9 of 120: LLM errors and "
        "Telegram send failures)"
    )
    assert "%7.5" in i18n.t("tr", event.title_key, **event.params)
    assert error_rate_event(1, 100, 600, firing=False).resolved


def test_crash_and_recovery_share_a_fingerprint() -> None:
    crash = fleet_event("poll-7", "crashed", "OperationalError: connection refused")
    back = fleet_event("poll-7", "recovered", "running again for 60 s")
    assert crash is not None and back is not None
    assert crash.fingerprint == back.fingerprint == "fleet:crash:poll-7"
    assert (crash.resolved, back.resolved) == (False, True)
    assert crash.labels.get("depends") == "database" and "depends" not in back.labels


def test_a_pair_and_the_whole_bot_are_separate_incidents_a_re_enable_ends_one() -> None:
    pair = fleet_event("bot-7/chat-3", "disabled", "kicked")
    bot = fleet_event("bot-7", "disabled", "401")
    enabled = fleet_event("bot-7/chat-3", "enabled", "re-enabled by ayse")
    assert pair is not None and bot is not None and enabled is not None
    assert pair.fingerprint != bot.fingerprint and enabled.fingerprint == pair.fingerprint
    assert pair.labels == bot.labels == {"bot": "7"} and enabled.resolved


def test_a_rate_limit_is_not_a_quota_alert() -> None:
    limited = "RateLimitError: Error code: 429 - Rate limit reached for gpt-4o-mini (RPM)"
    assert llm_event("quota", limited, ok=False) is None
    quota = "RateLimitError: Error code: 429 - You exceeded your current quota"
    event = llm_event("quota", quota, ok=False)
    assert event is not None and event.severity == "critical"
    assert llm_event("server", "500", ok=False) is None
