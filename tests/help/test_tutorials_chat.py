"""The tutorials of /docs tutorial on Telegram and Slack: "link your Telegram account",
"set up alerts" and "take and test a backup" tick a step only when the real state says it
was done (and say what is missing); progress survives a restart that lost every button;
forged or stale buttons change nothing."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, func, select

from chatops.commands import load_all
from chatops.notify_delivery import start_notifications
from chatops.telegram.surface import TelegramSurface
from piyasa.admin import identity
from piyasa.db.help_models import TutorialProgress
from piyasa.db.models import Identity
from piyasa.db.notify_models import NotifyDelivery
from piyasa.services import Services
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import PEOPLE, buttons, wait_answer
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.runtime.helpers import seed
from tests.users.helpers import private, slack_tap, tap
from tests.waiting import until

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CHECK = "✅ Done — check"


def labels(message: dict) -> list[str]:
    return [label for label, _ in buttons(message)]


async def progress_rows(services: Services) -> list[tuple[int, str, int, bool]]:
    async with services.sessions() as session:
        rows = await session.scalars(select(TutorialProgress).order_by(TutorialProgress.tutorial))
        return [(r.user_id, r.tutorial, r.step, r.done_at is not None) for r in rows]


async def test_slack_link_tutorial_checks_the_linked_accounts(slack, slack_server) -> None:  # noqa: F811
    """A viewer linked on Slack only: no code → refused; a code → ticked; Telegram not
    linked → refused; /link redeemed from Telegram → ticked; then done."""
    s, uid = slack.services, slack.services.extras.get("people", {}).get("viewer")
    async with s.sessions() as session, session.begin():
        user_id = await session.scalar(
            select(Identity.user_id).where(Identity.external_id == "U0VIEWER")
        )
        await session.execute(
            delete(Identity).where(Identity.user_id == user_id, Identity.provider == "telegram")
        )
    assert uid in (None, user_id)
    _, step1, _ = await slack.slash("U0VIEWER", "docs tutorial link")
    assert "Step 1/4 ●○○○" in slack_text(step1) and "user_viewer" in slack_text(step1)
    step2 = await slack_tap(slack, slack_server, "U0VIEWER", step1, CHECK)
    assert "Step 2/4 ●●○○" in slack_text(step2) and "/piyasa linkcode user_viewer" in slack_text(
        step2
    )
    again = await slack_tap(slack, slack_server, "U0VIEWER", step2, CHECK)
    assert "Step 2/4" in slack_text(again) and "No link code is waiting" in slack_text(again)
    code = await identity.create_link_code(s, user_id)  # what /linkcode hands the viewer
    step3 = await slack_tap(slack, slack_server, "U0VIEWER", again, CHECK)
    assert "Step 3/4 ●●●○" in slack_text(step3)
    not_yet = await slack_tap(slack, slack_server, "U0VIEWER", step3, CHECK)
    assert "No Telegram account is linked to user_viewer" in slack_text(not_yet)
    linked = await identity.redeem_link_code(s, code, "telegram", PEOPLE["viewer"][0])
    assert linked.ok  # what /link CODE does in the private Telegram chat
    step4 = await slack_tap(slack, slack_server, "U0VIEWER", not_yet, CHECK)
    assert "Step 4/4 ●●●●" in slack_text(step4)
    done = await slack_tap(slack, slack_server, "U0VIEWER", step4, CHECK)
    assert "All done: your chat accounts are linked" in slack_text(done)
    assert [r[1:] for r in await progress_rows(s)] == [("link", 4, True)]
    _, listing, _ = await slack.slash("U0VIEWER", "docs tutorial")
    assert "Link your Telegram account — done ●●●●" in slack_text(listing)
    assert "🎓 Set up alerts" in [label for label, _ in slack_buttons(listing)]


async def test_telegram_alerts_tutorial_needs_destination_prefs_and_a_delivered_test(
    tg,  # noqa: F811
) -> None:
    me, s = private("viewer"), tg.services
    configured = s.settings
    s.settings = dataclasses.replace(configured, admin_chat_ids=())  # alerts go nowhere
    await tg.say("viewer", "/lang tr")
    step1 = await tg.say("viewer", "/docs tutorial alerts")
    assert "Adım 1/5 ●○○○○" in step1["text"]
    step2 = await tap(tg, "viewer", me, step1, "✅ Tamam — denetle")
    nowhere = await tap(tg, "viewer", me, step2, "✅ Tamam — denetle")
    assert "Adım 2/5 ●●○○○" in nowhere["text"] and "henüz hedefi yok" in nowhere["text"]
    await tg.say("viewer", "/lang en")
    s.settings = configured  # the admin group is the destination again
    step3 = await tap(tg, "viewer", me, nowhere, "✅ Tamam — denetle")  # a Turkish screen
    assert "Step 3/5 ●●●○○" in step3["text"]
    off = await tap(tg, "viewer", me, step3, CHECK)
    assert "Your notifications are off. Send /notify on." in off["text"]
    await tg.say("viewer", "/notify on")
    step4 = await tap(tg, "viewer", me, off, CHECK)
    assert "Step 4/5 ●●●●○" in step4["text"]
    untested = await tap(tg, "viewer", me, step4, CHECK)
    assert "No test notification has been delivered yet" in untested["text"]

    svc = await start_notifications(s, SimpleNamespace(telegram=tg.surface, slack=None))
    try:
        alerts = await tg.say("admin", "/alerts")
        await tap(tg, "admin", private("admin"), alerts, "📨 Send a test")

        async def delivered() -> bool:
            async with s.sessions() as session:
                n = await session.scalar(
                    select(func.count())
                    .select_from(NotifyDelivery)
                    .where(NotifyDelivery.kind == "test", NotifyDelivery.state == "sent")
                )
            return bool(n)

        await until(delivered, "the test notification delivered")
    finally:
        await svc.stop()
        s.extras.pop("notify", None)
    step5 = await tap(tg, "viewer", me, untested, CHECK)
    assert "Step 5/5 ●●●●●" in step5["text"]
    done = await tap(tg, "viewer", me, step5, CHECK)
    assert "All done: alerts reach you" in done["text"]


async def test_telegram_tutorial_resumes_after_a_restart(tg) -> None:  # noqa: F811
    """Progress is stored: after a restart with a fresh in-process cache (every button of
    the old messages is gone) /docs tutorial resumes the tutorial at the step reached."""
    me = private("operator")
    await seed(tg.services, tg.sb, bots=1, chats=0)
    step1 = await tg.say("operator", "/docs tutorial bot")
    step2 = await tap(tg, "operator", me, step1, CHECK)
    step3 = await tap(tg, "operator", me, step2, CHECK)
    assert "Step 3/4" in step3["text"]

    await tg.surface.stop()
    fresh = Services.build(tg.services.settings, engine=tg.services.engine)
    surface = TelegramSurface(fresh, load_all())
    await surface.start(polling=True)
    try:
        await tg.sb.wait_for_poller(tg.bot_id)
        tg.surface, tg.services = surface, fresh
        before = len(tg.sb.sent(me, tg.bot_id))
        qid = await tg.sb.press_button(
            me, me, step3["message_id"], dict(buttons(step3))[CHECK], bot_id=tg.bot_id
        )
        stale = await wait_answer(tg.sb, qid)  # the old message's token died with the cache
        assert "expired" in (stale.get("text") or "") and len(tg.sb.sent(me, tg.bot_id)) == before
        listing = await tg.say("operator", "/docs tutorial")
        assert "Add your first bot — Step 3/4 ●●○○" in listing["text"]
        resumed = await tap(tg, "operator", me, listing, "🎓 Add your first bot")
        assert "Step 3/4 ●●●○" in resumed["text"]
    finally:
        await surface.stop()
        await fresh.cache.close()


async def test_forged_and_stale_tutorial_buttons_change_nothing(tg) -> None:  # noqa: F811
    me = private("viewer")
    anchor = await tg.say("viewer", "/docs tutorial")
    for params, want in (
        ({"t": "link", "s": "7"}, "has 4 steps; there is no step 7"),
        ({"t": "nope", "s": "1"}, "This button cannot do that"),
        ({"t": "backup"}, "This button cannot do that"),
    ):
        for spec_id in ("docs.tutorial", "docs.tutorial_check"):
            token = await tg.surface.tokens.issue(
                spec_id=spec_id, surface="telegram", user=str(me), chat=str(me), params=params
            )
            before = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
            mark = tg.sb.mark()
            qid = await tg.sb.press_button(
                me, me, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
            )
            answer = await wait_answer(tg.sb, qid)
            assert want in (answer.get("text") or ""), (spec_id, params, answer)
            if "no step" in want:  # answered with the list of tutorials, ticking nothing
                shown = await tg.sb.wait_for_message(
                    chat_id=me, edits=True, after=mark, bot_id=tg.bot_id
                )
                assert "🎓 Link your Telegram account" in labels(shown)
            else:  # refused by the registry before the handler: no screen at all
                after = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
                assert after == before, (spec_id, params)
    assert await progress_rows(tg.services) == []
    unknown = await tg.say("viewer", "/docs tutorial cooking")
    assert 'There is no tutorial "cooking"' in unknown["text"] and "🎓 Set up alerts" in labels(
        unknown
    )
