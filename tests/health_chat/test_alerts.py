"""Alerts: once per transition into critical, suppressed while it holds, one resolved line;
delivered in order despite failures; buttons in the admin group authorized per presser."""

from __future__ import annotations

import asyncio

from piyasa.admin.health import HealthService, State
from piyasa.admin.health.alerts import Alerter, AlertNotice
from piyasa.services import Services
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, wait_answer
from tests.health.conftest import Scripted
from tests.health_chat.conftest import FAST, button, group_texts, kb
from tests.waiting import HANG_S, finishes, until


class Recorder:
    """A sink that fails its first ``fail`` calls, then records."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0
        self.got: list[AlertNotice] = []
        self.changed = asyncio.Condition()

    async def __call__(self, notice: AlertNotice) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionError("chat unreachable")
        async with self.changed:
            self.got.append(notice)
            self.changed.notify_all()

    async def until(self, n: int) -> list[tuple[str, str]]:
        async def got_n() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: len(self.got) >= n)

        await finishes(got_n(), f"{n} notice(s) in the sink", output=lambda: str(self.got))
        return [(x.kind, x.component) for x in self.got]


async def test_once_per_transition_suppressed_while_held_and_resolved(services: Services) -> None:
    dep = Scripted("dep")
    health = HealthService(services, probes=[dep], thresholds=FAST, record_stop=False)
    alerter = Alerter(health, resolve_after_s=0)
    sink = Recorder()
    alerter.add_sink("rec", sink)
    await health.start()
    await alerter.start()
    try:
        for state in (State.CRITICAL, State.CRITICAL, State.WARNING, State.CRITICAL):
            dep.state = state
            await health.run_all_now()
        assert await sink.until(1) == [("firing", "dep")]
        dep.state = State.HEALTHY
        await health.run_all_now()
        await health.run_all_now()
        assert await sink.until(2) == [("firing", "dep"), ("resolved", "dep")]
        dep.state = State.CRITICAL  # a new transition is a new alert
        await health.run_all_now()
        assert (await sink.until(3))[-1] == ("firing", "dep")
        assert sink.got[1].duration_s >= 0
    finally:
        await alerter.stop()
        await health.stop()
    assert len(sink.got) == 3


async def test_a_short_recovery_inside_the_hold_posts_nothing(services: Services) -> None:
    dep = Scripted("dep", State.CRITICAL)
    health = HealthService(services, probes=[dep], thresholds=FAST, record_stop=False)
    alerter = Alerter(health, resolve_after_s=HANG_S)  # the hold outlasts anything but a hang
    sink = Recorder()
    alerter.add_sink("rec", sink)
    await health.start()
    await alerter.start()  # already critical at start: posted once
    try:
        assert await sink.until(1) == [("firing", "dep")]
        dep.state = State.HEALTHY
        await health.run_all_now()
        assert "dep" in alerter._resolving
        dep.state = State.CRITICAL  # back before the hold ended: same alert, still open
        await health.run_all_now()
        assert "dep" not in alerter._resolving and "dep" in alerter.open
    finally:
        await alerter.stop()
        await health.stop()
    assert [(x.kind, x.component) for x in sink.got] == [("firing", "dep")]


async def test_failed_deliveries_stay_pending_and_go_out_in_order(services: Services) -> None:
    dep = Scripted("dep")
    health = HealthService(services, probes=[dep], thresholds=FAST, record_stop=False)
    alerter = Alerter(health, retry_s=0.05, resolve_after_s=0)
    flaky, steady = Recorder(fail=3), Recorder()
    alerter.add_sink("flaky", flaky)
    alerter.add_sink("steady", steady)
    await health.start()
    await alerter.start()
    try:
        dep.state = State.CRITICAL
        await health.run_all_now()
        dep.state = State.HEALTHY
        await health.run_all_now()
        assert await steady.until(2) == [("firing", "dep"), ("resolved", "dep")]
        assert await flaky.until(2) == [("firing", "dep"), ("resolved", "dep")]
        assert flaky.calls == 5 and not alerter.pending()
    finally:
        await alerter.stop()
        await health.stop()


async def test_alert_in_the_admin_group_and_its_buttons_per_presser(hw) -> None:
    mark = hw.sb.mark()
    hw.probes["database"].state = State.CRITICAL
    await hw.health.run_all_now()
    alert = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert alert["text"].startswith("🔴 Critical: Database")
    assert "database is critical" in alert["text"]
    assert set(kb(alert)) == {"🔎 Details", "🩺 Run all checks now"}

    # A viewer may open the details (a new message: the alert stays for everyone) ...
    mark = await hw.press("viewer", ADMIN_GROUP, alert, button(alert, "Details"))
    details = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert details["message_id"] != alert["message_id"]
    assert "State: 🔴 critical" in details["text"]
    # ... but not run the quick action: refused as a toast, nothing posted or edited.
    before = len(hw.sb.sent(chat_id=ADMIN_GROUP))
    edits = len(hw.sb.calls("editMessageText"))
    qid = await hw.sb.press_button(
        PEOPLE["viewer"][0], ADMIN_GROUP, alert["message_id"], button(alert, "Run all")
    )
    answer = await wait_answer(hw.sb, qid)
    assert "does not exist or you may not run it" in answer["text"]
    qid = await hw.sb.press_button(
        PEOPLE["operator"][0], ADMIN_GROUP, alert["message_id"], button(alert, "Run all")
    )
    await wait_answer(hw.sb, qid)  # an operator may
    ran = await hw.sb.wait_for_message(
        lambda m: m["text"].startswith("🔴 Health"), chat_id=ADMIN_GROUP
    )
    assert ran["message_id"] != alert["message_id"]
    assert len(hw.sb.sent(chat_id=ADMIN_GROUP)) == before + 1
    assert len(hw.sb.calls("editMessageText")) == edits
    assert hw.sb.messages(ADMIN_GROUP)[alert["message_id"] - 1]["text"] == alert["text"]

    # Held: further rounds post nothing; recovery posts one resolved line.
    for _ in range(3):
        await hw.health.run_all_now()
    assert sum(t.startswith("🔴 Critical: Database") for t in group_texts(hw)) == 1
    mark = hw.sb.mark()
    hw.probes["database"].state = State.HEALTHY
    await hw.health.run_all_now()
    resolved = await hw.sb.wait_for_message(
        lambda m: m["text"].startswith("✅ Resolved"), chat_id=ADMIN_GROUP, after=mark
    )
    assert "Database is healthy again" in resolved["text"]
    assert sum(t.startswith("✅ Resolved") for t in group_texts(hw)) == 1


async def test_a_confirmed_action_from_an_alert_keeps_the_alert(hw, services: Services) -> None:
    """Pause (disruptive) from an alert: the confirmation is a new message for the presser."""
    from tests.health_chat.conftest import FakeFleet

    fleet = services.extras["fleet"] = FakeFleet()
    mark = hw.sb.mark()
    hw.probes["redis"].state = State.CRITICAL
    await hw.health.run_all_now()
    alert = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    from chatops.commands.health import alert_view

    view = alert_view("en", hw.alerter.notices[-1])
    assert view.buttons  # (redis has no fleet fix: run checks)
    token = await hw.surface.tokens.issue(
        spec_id="health.pause",
        surface="telegram",
        user="*",
        chat=str(ADMIN_GROUP),
        params={"keep": True},
    )
    mark = await hw.press("operator", ADMIN_GROUP, alert, token, forge=True)
    ask = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert ask["message_id"] != alert["message_id"] and "Pause the fleet?" in ask["text"]
    mark = await hw.press("operator", ADMIN_GROUP, ask, button(ask, "Yes"))
    done = await hw.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)
    assert done["message_id"] == ask["message_id"] and "Fleet paused" in done["text"]
    assert fleet.paused_by == ["user_operator"]
    assert hw.sb.messages(ADMIN_GROUP)[alert["message_id"] - 1]["text"] == alert["text"]


async def test_slack_alert_channel_gets_the_alert_and_authorizes_each_presser(
    services: Services, slack_server
) -> None:
    import dataclasses

    from tests.chatops.conftest import start_slack
    from tests.chatops.harness import seed_people, with_admin_settings
    from tests.chatops.slack_server import slack_buttons, slack_text
    from tests.health_chat.conftest import start_alerter, start_health

    await seed_people(services)
    with_admin_settings(services, "http://127.0.0.1:9")
    services.settings = dataclasses.replace(
        services.settings, admin_chat_ids=(), slack_alert_channel="C0ALERTS"
    )
    dep = Scripted("database")
    health = await start_health(services, [dep])
    async for client, surface in start_slack(services, slack_server):
        alerter = await start_alerter(services, None, surface)
        try:
            dep.state = State.CRITICAL
            await health.run_all_now()
            await until_posted(slack_server, 1)
            alert = slack_server.posted[-1]
            assert alert["channel"] == "C0ALERTS"
            assert "Critical: Database" in slack_text(alert)
            labels = dict(slack_buttons(alert))
            assert set(labels) == {"🔎 Details", "🩺 Run all checks now"}

            status, url = await client.press(
                PEOPLE["viewer"][1], labels["🩺 Run all checks now"], channel="C0ALERTS"
            )
            (refusal,) = await slack_server.wait_response(url)
            assert status == 200 and "may not run it" in slack_text(refusal)
            assert not refusal.get("replace_original")
            status, url = await client.press(
                PEOPLE["operator"][1], labels["🩺 Run all checks now"], channel="C0ALERTS"
            )
            (ran,) = await slack_server.wait_response(url)
            assert "Health" in slack_text(ran) and not ran.get("replace_original")

            dep.state = State.HEALTHY
            await health.run_all_now()
            await until_posted(slack_server, 2)
            assert "Resolved: Database is healthy again" in slack_text(slack_server.posted[-1])
        finally:
            await alerter.stop()
            await health.stop()


async def until_posted(server, n: int) -> None:  # type: ignore[no-untyped-def]
    await until(lambda: len(server.posted) >= n, f"{n} Slack posts")
